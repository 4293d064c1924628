"""prescriptions (PATHWAY.md §7) with versions like readings; what a visit recorded of the
medication; a patient's has_prescriptions flag

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 12:00:00

A prescription is identified by (patient, source system, source prescription id) among current
versions (a partial unique index, like a reading's); a change or a stop is a new version, the old
one kept with superseded_at / superseded_by. Visits gain medications_reviewed (false for those
stored before), adherence, adverse_reaction and its text (NULL: not asked). Patients gain
has_prescriptions (false: no patient had one), so a reassessment reads the table only for those who do.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT_VERSION = sa.text("superseded_at IS NULL")
JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "prescription",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("source_system", AutoString(length=64), nullable=False),
        sa.Column("source_prescription_id", AutoString(length=128), nullable=False),
        sa.Column("classes", JSON_TYPE, nullable=False),
        sa.Column("atc_code", AutoString(length=16), nullable=True),
        sa.Column("drug", AutoString(length=200), nullable=False),
        sa.Column("dose", AutoString(length=200), nullable=True),
        sa.Column("started_on", sa.Date(), nullable=False),
        sa.Column("supply_days", sa.Integer(), nullable=False),
        sa.Column("stopped_on", sa.Date(), nullable=True),
        sa.Column("traceability_codes", JSON_TYPE, nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("superseded_at", UTCDateTime(), nullable=True),
        sa.Column("superseded_by", sa.Integer(), nullable=True),
        sa.Column("retracted_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient.id"], name=op.f("fk_prescription_patient_id_patient")
        ),
        sa.ForeignKeyConstraint(
            ["superseded_by"], ["prescription.id"], name=op.f("fk_prescription_superseded_by_prescription")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prescription")),
    )
    with op.batch_alter_table("prescription", schema=None) as batch_op:
        batch_op.create_index(
            "uq_prescription_patient_id_source_system_source_prescription_id",
            ["patient_id", "source_system", "source_prescription_id"],
            unique=True,
            sqlite_where=CURRENT_VERSION,
            postgresql_where=CURRENT_VERSION,
        )
        batch_op.create_index(
            "ix_prescription_patient_id_started_on", ["patient_id", "started_on"], unique=False
        )
    with op.batch_alter_table("encounter", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("medications_reviewed", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("adherence", AutoString(length=16), nullable=True))
        batch_op.add_column(sa.Column("adverse_reaction", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("adverse_reaction_text", AutoString(length=500), nullable=True))
    with op.batch_alter_table("patient", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("has_prescriptions", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("patient", schema=None) as batch_op:
        batch_op.drop_column("has_prescriptions")
    with op.batch_alter_table("encounter", schema=None) as batch_op:
        batch_op.drop_column("adverse_reaction_text")
        batch_op.drop_column("adverse_reaction")
        batch_op.drop_column("adherence")
        batch_op.drop_column("medications_reviewed")
    with op.batch_alter_table("prescription", schema=None) as batch_op:
        batch_op.drop_index("ix_prescription_patient_id_started_on")
        batch_op.drop_index("uq_prescription_patient_id_source_system_source_prescription_id")
    op.drop_table("prescription")
