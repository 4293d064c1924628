"""examinations recorded as done

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 15:45:00

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "care_check",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("encounter_id", sa.Integer(), nullable=True),
        sa.Column("kind", AutoString(length=16), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("source_system", AutoString(length=64), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["encounter_id"], ["encounter.id"], name=op.f("fk_care_check_encounter_id_encounter")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient.id"], name=op.f("fk_care_check_patient_id_patient")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_check")),
        sa.UniqueConstraint("patient_id", "kind", "at", name=op.f("uq_care_check_patient_id_kind_at")),
    )
    with op.batch_alter_table("care_check", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_care_check_patient_id"), ["patient_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("care_check", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_care_check_patient_id"))
    op.drop_table("care_check")
