"""readings: drop the index on measured_at alone

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23 19:10:00

Every query of readings names the patient, and (patient_id, measured_at) serves them all; the index
on the time alone served none, and every stored reading paid for it (one of five indexes).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("reading", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reading_measured_at"))


def downgrade() -> None:
    with op.batch_alter_table("reading", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reading_measured_at"), ["measured_at"], unique=False)
