"""SQL of the patient search (患者): a team's patients (or every patient), found by name, external id
or phone.

Part of the repository layer: functions take a Session and never commit. A team's patients are one
range of ``ix_patient_team_id``; the text tests run on those rows only (a team has a few thousand
patients), so no text index is kept. The phone is matched on its digits: ``138-0013 8000`` is found
by ``13800138000`` and by ``0013 8000``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, case, func, or_
from sqlalchemy import select as select_columns
from sqlmodel import Session, SQLModel

from pathway.store.tables import Patient

_patient_table = SQLModel.metadata.tables[Patient.__tablename__]
_patient = _patient_table.c
# A query made only of what a phone number holds is also looked for among the phones' digits.
_PHONE_LIKE = re.compile(r"[0-9+ -]+")


def _phone_digits() -> ColumnElement[str]:
    return func.replace(func.replace(func.replace(_patient.phone, " ", ""), "-", ""), "+", "")


def _matching(query: str) -> ColumnElement[bool]:
    found = [
        _patient.name.icontains(query, autoescape=True),
        _patient.external_id.icontains(query, autoescape=True),
    ]
    digits = re.sub(r"[^0-9]", "", query)
    if digits and _PHONE_LIKE.fullmatch(query):
        found.append(_phone_digits().contains(digits, autoescape=True))
    return or_(*found)


def search(
    session: Session, *, team_id: int | None, query: str | None, limit: int, offset: int
) -> tuple[int, Sequence[Any]]:
    """(total, page) of the patients of ``team_id`` (every patient when None) matching ``query`` (all
    when None): an exact external id first, then by registration (patient id)."""
    conditions: list[ColumnElement[bool]] = []
    if team_id is not None:
        conditions.append(_patient.team_id == team_id)
    if query:
        conditions.append(_matching(query))
    exact = case((_patient.external_id == query, 0), else_=1) if query else None
    statement = (
        select_columns(
            _patient.id,
            _patient.source_system,
            _patient.external_id,
            _patient.team_id,
            _patient.name,
            _patient.phone,
            _patient.sex,
            _patient.birth_date,
            func.count().over().label("total"),
        )
        .where(*conditions)
        .order_by(*([exact] if exact is not None else []), _patient.id)
        .limit(limit)
        .offset(offset)
    )
    page = session.execute(statement).all()
    if page or offset == 0:
        return (int(page[0].total) if page else 0), page
    total = session.execute(select_columns(func.count()).select_from(_patient_table).where(*conditions))
    return int(total.scalar_one()), page
