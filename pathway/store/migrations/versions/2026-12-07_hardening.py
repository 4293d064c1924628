"""hardening: idempotency keys per API key, workbench sessions kept by the server, a server secret

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 10:00:00

- ``idempotent_request`` gains ``api_key_id`` and is unique per (api_key_id, scope, key) instead of
  (scope, key): one gateway's ``Idempotency-Key`` no longer refuses (409) or replays another's. The
  answers kept before this revision have no key (NULL) and are never replayed: a retry of one is
  processed anew (its readings come back ``duplicate``), as after the retention window.
- ``workbench_session``: a signed-in browser, ended by signing out, by revoking its key, or by its
  expiry.
- ``server_secret``: the workbench secret the servers generate and share when
  ``PATHWAY_WEB_SESSION_SECRET`` is not set.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("idempotent_request", schema=None) as batch_op:
        batch_op.add_column(sa.Column("api_key_id", sa.Integer(), nullable=True))
        batch_op.drop_constraint("uq_idempotent_request_scope_key", type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_idempotent_request_api_key_id_scope_key"), ["api_key_id", "scope", "key"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_idempotent_request_api_key_id_api_key"), "api_key", ["api_key_id"], ["id"]
        )
    op.create_table(
        "workbench_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_digest", AutoString(length=64), nullable=False),
        sa.Column("api_key_id", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["api_key_id"], ["api_key.id"], name=op.f("fk_workbench_session_api_key_id_api_key")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workbench_session")),
        sa.UniqueConstraint("token_digest", name=op.f("uq_workbench_session_token_digest")),
    )
    with op.batch_alter_table("workbench_session", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_workbench_session_api_key_id"), ["api_key_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_workbench_session_expires_at"), ["expires_at"], unique=False)
    op.create_table(
        "server_secret",
        sa.Column("name", AutoString(length=64), nullable=False),
        sa.Column("value", AutoString(length=128), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_server_secret")),
    )


def downgrade() -> None:
    op.drop_table("server_secret")
    with op.batch_alter_table("workbench_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workbench_session_expires_at"))
        batch_op.drop_index(batch_op.f("ix_workbench_session_api_key_id"))
    op.drop_table("workbench_session")
    # Answers kept per API key may repeat a (scope, key) pair: only the first of each is kept.
    op.execute(
        "DELETE FROM idempotent_request WHERE id NOT IN "
        "(SELECT MIN(id) FROM idempotent_request GROUP BY scope, key)"
    )
    with op.batch_alter_table("idempotent_request", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_idempotent_request_api_key_id_api_key"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("uq_idempotent_request_api_key_id_scope_key"), type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_idempotent_request_scope_key"), ["scope", "key"])
        batch_op.drop_column("api_key_id")
