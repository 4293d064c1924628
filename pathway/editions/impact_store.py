"""SQL of an impact run: the patients by keyset pages of ids, the team codes and the count (the
histories of a batch come from :mod:`pathway.patients.history`, read as a replay at ``as_of``).

Part of the repository layer: functions take a Session, only read and never commit.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func
from sqlalchemy import select as select_columns
from sqlmodel import Session, SQLModel, col, select

from pathway.store.tables import Patient, Team

_TABLES = SQLModel.metadata.tables
_patient = _TABLES[Patient.__tablename__].c


def team_codes(session: Session) -> dict[int, str]:
    _team = _TABLES[Team.__tablename__].c
    return {
        int(team_id): str(code) for team_id, code in session.execute(select_columns(_team.id, _team.code))
    }


def patient_count(session: Session) -> int:
    return int(
        session.execute(select_columns(func.count()).select_from(_TABLES[Patient.__tablename__])).scalar_one()
    )


def patient_ids_after(session: Session, after: int, limit: int) -> list[int]:
    """The next ``limit`` patient ids above ``after``, in order (a keyset page)."""
    statement = select_columns(_patient.id).where(_patient.id > after).order_by(_patient.id).limit(limit)
    return [int(patient_id) for (patient_id,) in session.execute(statement)]


def patients_between(session: Session, first: int, last: int) -> Sequence[Patient]:
    """The patients with ids in ``[first, last]``, by id."""
    statement = (
        select(Patient).where(col(Patient.id) >= first, col(Patient.id) <= last).order_by(col(Patient.id))
    )
    return session.exec(statement).all()
