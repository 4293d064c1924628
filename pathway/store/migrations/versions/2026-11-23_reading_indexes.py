"""readings: drop the indexes on patient_id and encounter_id alone

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 17:45:00

(patient_id) is the prefix of ix_reading_patient_id_measured_at and of the unique (patient, kind,
time, device) index; (encounter_id) served no query, and with stale statistics the planner used it
for "encounter_id IS NULL", which matches nearly every reading. Each costs every insert.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("reading", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reading_encounter_id"))
        batch_op.drop_index(batch_op.f("ix_reading_patient_id"))


def downgrade() -> None:
    with op.batch_alter_table("reading", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reading_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_reading_encounter_id"), ["encounter_id"], unique=False)
