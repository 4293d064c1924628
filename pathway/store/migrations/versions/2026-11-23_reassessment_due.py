"""patients awaiting a reassessment after a failed evaluation

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 15:15:00

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("patient", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reassessment_due_since", UTCDateTime(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_patient_reassessment_due_since"), ["reassessment_due_since"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("patient", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_patient_reassessment_due_since"))
        batch_op.drop_column("reassessment_due_since")
