"""SQL of the team's lists: the team, the daily list, the latest assessment of many patients.

Part of the repository layer: functions take a Session and never commit. The daily list is one
range scan of the partial index ``ix_care_task_daily_list`` (team, due_date, priority) joined to
the patients on the page; the newest assessment of each listed patient is one backward probe of
``ix_assessment_patient_id_id`` (patient_id, id) per patient, however many assessments the patient
has (an hourly wearable makes 8,760 a year): a grouped ``max(id)`` read them all. The inputs of the
indicators are :mod:`pathway.teams.indicator_store`'s.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ARRAY,
    Column,
    ColumnElement,
    Integer,
    Select,
    and_,
    bindparam,
    case,
    column,
    func,
    or_,
    true,
)
from sqlalchemy import select as select_columns
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.expression import BindParameter, TableValuedAlias
from sqlmodel import Session, SQLModel

from pathway.clinical.vocabulary import ReadingKind
from pathway.store.sql import IS_OPEN
from pathway.store.tables import AssessmentRecord, Patient, Reading, Team
from pathway.store.work_tables import CareTask

if TYPE_CHECKING:
    from pathway.teams.daily_tasks import ListQuery

_TABLES = SQLModel.metadata.tables
_task_table = _TABLES[CareTask.__tablename__]
_task = _task_table.c
_patient_table = _TABLES[Patient.__tablename__]
_patient = _patient_table.c
_assessment_table = _TABLES[AssessmentRecord.__tablename__]
_assessment = _assessment_table.c
_reading = _TABLES[Reading.__tablename__].c


def team_by_id(session: Session, team_id: int) -> Team | None:
    return session.get(Team, team_id)


def _list_filter(query: ListQuery) -> list[Any]:
    """Open tasks of the team on the list of ``query.day`` (``query.until``: its end): due by then, or
    issued by then, or of a kind listed from the moment it was called for (``query.at_once``), and not
    snoozed past it."""
    until = query.until
    listed = [_task.due_date <= query.day, _task.issued_at < until]
    if query.at_once:
        listed.append(and_(_task.kind.in_(list(query.at_once)), _task.created_at < until))
    conditions: list[Any] = [
        _task.team_id == query.team_id,
        IS_OPEN,
        or_(*listed),
        or_(_task.snoozed_until.is_(None), _task.snoozed_until < until),
    ]
    if query.role is not None:
        conditions.append(_task.role == query.role)
    if query.member is not None:
        conditions.append(_task.assignee == query.member)
    return conditions


_LIST_COLUMNS = (
    _task.id,
    _task.patient_id,
    _task.kind,
    _task.subject,
    _task.priority,
    _task.due_at,
    _task.due_date,
    _task.time_limit_at,
    _task.role,
    _task.assignee,
    _task.tier,
    _task.rule_id,
    _task.pack_version,
    _task.escalated_at,
    _task.assessment_id,
    _patient.name,
    _patient.external_id,
)


def daily_list(session: Session, query: ListQuery, tier_rank: dict[str, int]) -> tuple[int, Sequence[Any]]:
    """(total, page) of the team's tasks on the list of the query's day (:func:`_list_filter`):
    priority, then days overdue (oldest due first), then tier (``tier_rank``, 0 worst).

    The page is cut from the tasks alone (counted in the same scan), then joined to its patients:
    a list of 20,000 tasks looks up 50 patients, not 20,000."""
    conditions = _list_filter(query)
    tier_order = case(tier_rank, value=_task.tier, else_=len(tier_rank)).label("tier_order")
    task_columns = [c for c in _LIST_COLUMNS if c.table is _task_table]
    cut = (
        select_columns(*task_columns, tier_order, func.count().over().label("total"))
        .where(*conditions)
        .order_by(_task.priority, _task.due_date, tier_order, _task.due_at, _task.id)
        .limit(query.limit)
        .offset(query.offset)
        .subquery("page")
    )
    named = {c.name: cut.c[c.name] for c in task_columns}
    statement = (
        select_columns(
            *(named[c.name] if c.table is _task_table else c for c in _LIST_COLUMNS), cut.c.total
        )
        .join_from(cut, _patient_table, _patient.id == cut.c.patient_id)
        .order_by(cut.c.priority, cut.c.due_date, cut.c.tier_order, cut.c.due_at, cut.c.id)
    )
    page = session.execute(statement).all()
    if page:
        return int(page[0].total), page
    if query.offset == 0:
        return 0, page
    # past the last page: the window counted nothing, so count on its own
    total = session.execute(
        select_columns(func.count()).select_from(_task_table).where(*conditions)
    ).scalar_one()
    return int(total), page


def daily_cards(
    session: Session, query: ListQuery, tier_rank: dict[str, int]
) -> tuple[int, int, Sequence[Any]]:
    """The list of the query's day (:func:`_list_filter`) by patient: (patients, tasks, the page's
    task rows); a page is ``query.limit`` patients.

    Patients in order of their most urgent task's priority, then their tier (``tier_rank``, 0
    worst), then those with something due that day (or listed before it is due) before those with
    only overdue work, then the oldest due, then patient id; each patient's tasks by priority, due
    date, due time. One grouped statement pages the patients (counting them, and every listed task,
    in the same scan), one reads their tasks.
    """
    conditions = _list_filter(query)
    tier_order = case(tier_rank, value=_task.tier, else_=len(tier_rank))
    only_overdue = case((_task.due_date >= query.day, 0), else_=1)
    order = (
        func.min(_task.priority),
        func.min(tier_order),
        func.min(only_overdue),
        func.min(_task.due_date),
        _task.patient_id,
    )
    cards = (
        select_columns(
            _task.patient_id,
            func.count().over().label("patients"),
            func.sum(func.count()).over().label("tasks"),
        )
        .where(*conditions)
        .group_by(_task.patient_id)
        .order_by(*order)
        .limit(query.limit)
        .offset(query.offset)
    )
    page = session.execute(cards).all()
    if not page:
        counted = select_columns(func.count(func.distinct(_task.patient_id)), func.count()).where(*conditions)
        patients, tasks = session.execute(counted).one()
        return int(patients), int(tasks), []
    rank = {int(row.patient_id): index for index, row in enumerate(page)}
    rows = session.execute(
        select_columns(*_LIST_COLUMNS)
        .join(_patient_table, _patient.id == _task.patient_id)
        .where(*conditions, _task.patient_id.in_(list(rank)))
        .order_by(_task.priority, _task.due_date, _task.due_at, _task.id)
    ).all()
    ordered = sorted(rows, key=lambda row: rank[row.patient_id])  # stable: each patient's order kept
    return int(page[0].patients), int(page[0].tasks), ordered


@dataclass(frozen=True)
class CrisisReading:
    """The BP reading a ``bp_recheck`` is to confirm: its values, when and how it was taken."""

    systolic: float
    diastolic: float
    measured_at: datetime
    source: str


def crisis_readings(
    session: Session, tasks: Sequence[tuple[int, int, int | None]], kind: str
) -> dict[int, CrisisReading]:
    """For ``(task id, patient id, assessment id)`` of recheck tasks of ``kind``: the reading each is
    to confirm (the anchor its assessment gave it, the highest BP taken at that moment), by task id."""
    assessment_ids = sorted({a for _, _, a in tasks if a is not None})
    if not assessment_ids:
        return {}
    anchors: dict[int, datetime] = {}
    for assessment_id, result in session.execute(
        select_columns(_assessment.id, _assessment.result).where(_assessment.id.in_(assessment_ids))
    ):
        for called in (result or {}).get("tasks", []):
            if called.get("kind") == kind and called.get("anchor_at"):
                anchors[assessment_id] = datetime.fromisoformat(called["anchor_at"])
    wanted = {(p, anchors[a]) for _, p, a in tasks if a in anchors}
    if not wanted:
        return {}
    found: dict[tuple[int, datetime], CrisisReading] = {}
    statement = select_columns(
        _reading.patient_id, _reading.systolic, _reading.diastolic, _reading.measured_at, _reading.source
    ).where(
        _reading.patient_id.in_(sorted({p for p, _ in wanted})),
        _reading.kind == ReadingKind.BP.value,
        _reading.measured_at.in_(sorted({at for _, at in wanted})),
    )
    for patient_id, systolic, diastolic, measured_at, source in session.execute(statement):
        key = (patient_id, measured_at)
        if key not in wanted or systolic is None or diastolic is None:
            continue
        best = found.get(key)
        if best is None or (systolic, diastolic) > (best.systolic, best.diastolic):
            found[key] = CrisisReading(float(systolic), float(diastolic), measured_at, source)
    return {
        task_id: found[(p, anchors[a])]
        for task_id, p, a in tasks
        if a in anchors and (p, anchors[a]) in found
    }


_MADE_BY: BindParameter[datetime] = bindparam("made_by")


def _newest(patient_id: ColumnElement[int], made_by: bool, *columns: Column[Any]) -> Select[Any]:
    """``columns`` of the patient's newest assessment (with ``made_by``, the newest made by the
    ``made_by`` parameter): a backward walk of ``ix_assessment_patient_id_id`` that stops at the
    first row (with ``made_by``, the first made by then)."""
    newer = _assessment_table.alias("newest")
    statement = select_columns(*(newer.c[c.name] for c in columns)).where(newer.c.patient_id == patient_id)
    if made_by:
        statement = statement.where(newer.c.evaluated_at <= _MADE_BY)
    return statement.order_by(newer.c.id.desc()).limit(1)


def _listed() -> TableValuedAlias:
    """PostgreSQL: the patient ids as one array parameter (``patients``), unnested (one statement
    text, prepared once, for any page size)."""
    patients = bindparam("patients", type_=ARRAY(Integer))
    return func.unnest(patients).table_valued("patient_id").render_derived(name="listed")


@functools.cache
def _tiers_statement(dialect: str, made_by: bool) -> Select[Any]:
    """The statement of :func:`latest_tiers`, built once per dialect and shape (parameters
    ``patients`` and, with ``made_by``, ``made_by``): SQLAlchemy then finds it in its compiled cache
    by identity instead of rebuilding and hashing a new one per page."""
    if dialect == "postgresql":
        listed = _listed()
        newest = _newest(listed.c.patient_id, made_by, _assessment.tier).lateral("newest")
        return select_columns(listed.c.patient_id, newest.c.tier).select_from(listed.join(newest, true()))
    newest_id = _newest(_patient.id, made_by, _assessment.id).scalar_subquery()
    return (
        select_columns(_patient.id, _assessment.tier)
        .select_from(_patient_table.join(_assessment_table, _assessment.id == newest_id))
        .where(_patient.id.in_(bindparam("patients", expanding=True)))
    )


def latest_tiers(
    session: Session, patient_ids: Sequence[int], made_by: datetime | None = None
) -> dict[int, str]:
    """The tier of each of these patients' newest stored assessment (made by ``made_by`` if given).

    PostgreSQL: a LATERAL ``LIMIT 1`` per listed patient. SQLite (no LATERAL): the patients joined
    to the assessment whose id is the correlated ``LIMIT 1``.
    """
    statement = _tiers_statement(session.get_bind().dialect.name, made_by is not None)
    found: dict[int, str] = {}
    for chunk in chunks(patient_ids):
        parameters: dict[str, Any] = {"patients": chunk}
        if made_by is not None:
            parameters["made_by"] = made_by
        for patient_id, tier in session.execute(statement, parameters).all():
            found[patient_id] = tier
    return found


@dataclass(frozen=True)
class AssessmentSummary:
    """What a list item shows of a patient's newest assessment: its tier, reasons and some facts."""

    tier: str
    reasons: list[dict[str, Any]]
    facts: dict[str, Any]


@functools.cache
def _summaries_statement(dialect: str, fact_names: tuple[str, ...]) -> Select[Any]:
    """The statement of :func:`latest_summaries`, built once per dialect and facts (parameter
    ``patients``)."""
    if dialect == "postgresql":
        listed = _listed()
        newest = _newest(listed.c.patient_id, False, _assessment.tier, _assessment.result).lateral("newest")
        unpacked = (
            func.jsonb_to_record(newest.c.result)
            .table_valued(column("reasons", JSONB), column("facts", JSONB))
            .render_derived(name="unpacked", with_types=True)
        )
        return select_columns(
            listed.c.patient_id,
            newest.c.tier,
            unpacked.c.reasons,
            *(unpacked.c.facts[name] for name in fact_names),
        ).select_from(listed.join(newest, true()).join(unpacked, true()))
    newest_id = _newest(_patient.id, False, _assessment.id).scalar_subquery()
    return (
        select_columns(
            _patient.id,
            _assessment.tier,
            _assessment.result["reasons"],
            *(_assessment.result[("facts", name)] for name in fact_names),
        )
        .select_from(_patient_table.join(_assessment_table, _assessment.id == newest_id))
        .where(_patient.id.in_(bindparam("patients", expanding=True)))
    )


def latest_summaries(
    session: Session, patient_ids: Sequence[int], fact_names: Sequence[str]
) -> dict[int, AssessmentSummary]:
    """The tier, reasons and named facts of each patient's newest assessment, picked out of the
    stored result by the database (a list page never loads and decodes whole results).

    PostgreSQL compresses a result of more than about 2 KB, and every ``->`` on the stored column
    decompresses it again: there the result is unpacked once (``jsonb_to_record``) and the facts
    are picked from that (measured: 50 list items, 4.8 ms of database time before, 2.0 after).
    The newest assessment is found as in :func:`latest_tiers` (a grouped ``max(id)`` read every
    assessment of the page's patients: 44,700 index entries for 50 patients, 5 with a wearable).
    """
    statement = _summaries_statement(session.get_bind().dialect.name, tuple(fact_names))
    found: dict[int, AssessmentSummary] = {}
    for chunk in chunks(patient_ids):
        for patient_id, tier, reasons, *values in session.execute(statement, {"patients": chunk}).all():
            facts = {name: value for name, value in zip(fact_names, values, strict=True) if value is not None}
            found[patient_id] = AssessmentSummary(tier=tier, reasons=reasons or [], facts=facts)
    return found


_CHUNK = 500


def chunks(ids: Sequence[int]) -> list[list[int]]:
    return [list(ids[i : i + _CHUNK]) for i in range(0, len(ids), _CHUNK)]
