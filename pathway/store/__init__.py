"""The durable home every concept shares: engine and sessions, the SQLModel tables, row shapes and SQL
pieces that several packages' stores use, and the Alembic migrations."""
