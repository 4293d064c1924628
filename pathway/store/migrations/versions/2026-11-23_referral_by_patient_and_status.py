"""a patient's referrals by status in one index

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 17:20:00

"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.create_index("ix_referral_patient_id_status", ["patient_id", "status"], unique=False)
        batch_op.drop_index(batch_op.f("ix_referral_patient_id"))


def downgrade() -> None:
    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_referral_patient_id"), ["patient_id"], unique=False)
        batch_op.drop_index("ix_referral_patient_id_status")
