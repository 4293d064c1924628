"""readings: identity per patient and system, the value in the natural key, versions and retractions;
API keys: their registered source system

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 10:00:00

A source reading id was unique across the whole store (another patient's reading with the same id
was answered as a duplicate of it), and the natural key left the value out (a second reading of the
same instant with another value was dropped). A reading's identity becomes (patient, source system,
source id) and its natural key (patient, kind, instant, device, value_key), both over current
versions only: a superseded version (superseded_at, superseded_by) is kept beside its replacement;
a retracted one (retracted_at) stays in both keys. Keys get the system they post for: gateway keys
the ``gateway`` their readings were stored under, the others ``ehr`` (the visits' default).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT_VERSION = sa.text("superseded_at IS NULL")
_BATCH = 5000


def _value_key(*values: float | None) -> str:
    """pathway.ingest.recording.value_key, frozen here as of this revision."""
    return "/".join("" if value is None else repr(float(value)) for value in values)


def upgrade() -> None:
    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_system", AutoString(length=64), nullable=True))
    op.execute("UPDATE api_key SET source_system = CASE WHEN role = 'gateway' THEN 'gateway' ELSE 'ehr' END")
    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.alter_column("source_system", existing_type=AutoString(length=64), nullable=False)

    with op.batch_alter_table("reading", schema=None) as batch_op:
        batch_op.add_column(sa.Column("value_key", AutoString(length=128), nullable=True))
        batch_op.add_column(sa.Column("superseded_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("superseded_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("retracted_at", UTCDateTime(), nullable=True))
    connection = op.get_bind()
    reading = sa.table(
        "reading",
        sa.column("id", sa.Integer()),
        sa.column("value", sa.Float()),
        sa.column("systolic", sa.Float()),
        sa.column("diastolic", sa.Float()),
        sa.column("pulse", sa.Float()),
        sa.column("value_key", AutoString(length=128)),
    )
    fill = (
        sa.update(reading)
        .where(reading.c.id == sa.bindparam("reading_id"))
        .values(value_key=sa.bindparam("key"))
    )
    last = 0
    while True:  # by primary key, a batch at a time: the ids, then their keys
        rows = connection.execute(
            sa.select(reading.c.id, reading.c.value, reading.c.systolic, reading.c.diastolic, reading.c.pulse)
            .where(reading.c.id > last)
            .order_by(reading.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            break
        connection.execute(fill, [{"reading_id": row[0], "key": _value_key(*row[1:])} for row in rows])
        last = rows[-1][0]
    with op.batch_alter_table("reading", schema=None) as batch_op:
        batch_op.alter_column("value_key", existing_type=AutoString(length=128), nullable=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_reading_superseded_by_reading"), "reading", ["superseded_by"], ["id"]
        )
        batch_op.drop_constraint("uq_reading_source_system_source_reading_id", type_="unique")
        batch_op.drop_constraint("uq_reading_patient_id_kind_measured_at_device_key", type_="unique")
        batch_op.create_index(
            "uq_reading_patient_id_source_system_source_reading_id",
            ["patient_id", "source_system", "source_reading_id"],
            unique=True,
            sqlite_where=CURRENT_VERSION,
            postgresql_where=CURRENT_VERSION,
        )
        batch_op.create_index(
            "uq_reading_patient_id_kind_measured_at_device_key_value_key",
            ["patient_id", "kind", "measured_at", "device_key", "value_key"],
            unique=True,
            sqlite_where=CURRENT_VERSION,
            postgresql_where=CURRENT_VERSION,
        )


def downgrade() -> None:
    # Superseded versions go (the narrower keys of 0012 cannot hold them beside their replacements),
    # and of readings now equal under the old keys, the latest stays.
    op.execute("DELETE FROM reading WHERE superseded_at IS NOT NULL")
    op.execute(
        "DELETE FROM reading WHERE EXISTS (SELECT 1 FROM reading AS later WHERE later.id > reading.id"
        " AND later.patient_id = reading.patient_id AND later.kind = reading.kind"
        " AND later.measured_at = reading.measured_at AND later.device_key = reading.device_key)"
    )
    op.execute(
        "DELETE FROM reading WHERE source_reading_id IS NOT NULL AND EXISTS (SELECT 1 FROM reading AS"
        " later WHERE later.id > reading.id AND later.source_system = reading.source_system"
        " AND later.source_reading_id = reading.source_reading_id)"
    )
    with op.batch_alter_table("reading", schema=None) as batch_op:
        batch_op.drop_index("uq_reading_patient_id_kind_measured_at_device_key_value_key")
        batch_op.drop_index("uq_reading_patient_id_source_system_source_reading_id")
        batch_op.create_unique_constraint(
            "uq_reading_patient_id_kind_measured_at_device_key",
            ["patient_id", "kind", "measured_at", "device_key"],
        )
        batch_op.create_unique_constraint(
            "uq_reading_source_system_source_reading_id", ["source_system", "source_reading_id"]
        )
        batch_op.drop_constraint("fk_reading_superseded_by_reading", type_="foreignkey")
        batch_op.drop_column("retracted_at")
        batch_op.drop_column("superseded_by")
        batch_op.drop_column("superseded_at")
        batch_op.drop_column("value_key")
    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.drop_column("source_system")
