"""readings: a partial index of the clinical ones (at a visit, in the clinic, from the lab)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 19:05:00

A reassessment reads a patient's clinical readings whole and its self-measured stream only from a
recent moment on. (patient_id, measured_at) over every reading made PostgreSQL read the whole
stream to find the few clinical ones: a year of hourly wearable readings on every post. Team
indicators count clinical readings the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CLINICAL = sa.text("encounter_id IS NOT NULL OR source IN ('clinic', 'lab')")


def upgrade() -> None:
    with op.batch_alter_table("reading", schema=None) as batch_op:
        batch_op.create_index(
            "ix_reading_patient_id_measured_at_clinical",
            ["patient_id", "measured_at"],
            unique=False,
            postgresql_where=CLINICAL,
            sqlite_where=CLINICAL,
        )


def downgrade() -> None:
    with op.batch_alter_table("reading", schema=None) as batch_op:
        batch_op.drop_index("ix_reading_patient_id_measured_at_clinical")
