"""assessments: a patient's newest by (patient_id, id)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 18:50:00

A patient's newest assessment is read on every summary, assessment read and retried ingest. With an
index on patient_id alone, PostgreSQL walked the primary key backwards and filtered by patient: for a
patient not assessed lately, a scan of every newer assessment in the county. (patient_id, id) finds
it in one probe and serves the foreign key's lookups as the old index did.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("assessment", schema=None) as batch_op:
        batch_op.create_index("ix_assessment_patient_id_id", ["patient_id", "id"], unique=False)
        batch_op.drop_index(batch_op.f("ix_assessment_patient_id"))


def downgrade() -> None:
    with op.batch_alter_table("assessment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_assessment_patient_id"), ["patient_id"], unique=False)
        batch_op.drop_index("ix_assessment_patient_id_id")
