"""patient status (active / deceased / moved) and enrolment date (建档日期)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 10:00:00

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("patient", schema=None) as batch_op:
        batch_op.add_column(sa.Column("enrolled_on", sa.Date(), nullable=True))
        batch_op.add_column(
            sa.Column("status", AutoString(length=16), nullable=False, server_default="active")
        )
        batch_op.add_column(sa.Column("status_changed_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("patient", schema=None) as batch_op:
        batch_op.drop_column("status_changed_at")
        batch_op.drop_column("status")
        batch_op.drop_column("enrolled_on")
