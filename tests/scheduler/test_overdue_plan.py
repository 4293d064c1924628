"""The daily run's bulk marking reads the open tasks it marks, never the closed task history.

PostgreSQL only (SQLite has no planner choice to get wrong): a store whose closed tasks, as in any
county after a year, far outnumber the open ones. Closed tasks were never marked overdue, so the
planner's estimate of ``overdue_at IS NULL`` (from the whole table) is far too high: joined to the
locked ids, the UPDATE was planned as a join over every task ever created.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from sqlmodel import Session

from pathway.store.db import make_engine, migrate
from pathway.tasks import issuing_store
from pathway.tasks.issuing_store import RunEvent, Scope
from tests.scheduler.conftest import DAY, add_patient, add_team, local

D = date(2026, 3, 10)
NOW = local(D, 6, 0)
OPEN_TASKS = 1_000  # one a patient, due before D: all but NEWLY_OVERDUE marked overdue already
NEWLY_OVERDUE = 10
CLOSED_TASKS = 40_000  # a year of history, closed before they fell overdue

_COLUMNS = """patient_id, team_id, kind, subject, status, due_at, due_date, issued_at, overdue_at,
    time_limit_at, priority, role, rule_id, rule_ids, pack_id, pack_version, tier, evidence,
    created_at, updated_at, closed_at"""


_CLOSED = f"""
    INSERT INTO care_task ({_COLUMNS})
    SELECT :first + g % :patients, :team, 'data_gap', '', 'done', at,
           (at AT TIME ZONE 'Asia/Shanghai')::date, at, NULL, at + interval '1 day', 3, 'gp', 'test',
           '["test"]', 'sangao-cn', '2020.4', 'yellow', '["encounter"]', at, at, at + interval '1 day'
    FROM (SELECT g, :start + g * interval '30 minutes' / 4 AS at FROM generate_series(1, :closed) g) s
"""
_OPEN = f"""
    INSERT INTO care_task ({_COLUMNS})
    SELECT :first + g, :team, 'follow_up_visit', '', 'open', at,
           (at AT TIME ZONE 'Asia/Shanghai')::date, at,
           CASE WHEN g >= :newly THEN at + interval '1 day' END, at + interval '1 day', 3, 'gp', 'test',
           '["test"]', 'sangao-cn', '2020.4', 'yellow', '["encounter"]', at, at, NULL
    FROM (SELECT g, :due - g * interval '20 days' / :open AS at FROM generate_series(0, :open - 1) g) s
"""


def _fill(session: Session, team: int, patients: list[int]) -> None:
    """Closed history first (lower ids), then one open task a patient, due from 20 days before D."""
    first = min(patients)
    closed = {"patients": len(patients), "start": NOW - 400 * DAY, "closed": CLOSED_TASKS}
    session.execute(text(_CLOSED), {"first": first, "team": team, **closed})
    opened = {"due": NOW - DAY, "newly": NEWLY_OVERDUE, "open": OPEN_TASKS}
    session.execute(text(_OPEN), {"first": first, "team": team, **opened})


@pytest.fixture
def county(postgres_url: str) -> Iterator[tuple[Engine, int]]:
    migrate(postgres_url)
    engine = make_engine(postgres_url)
    with Session(engine) as session:
        team = add_team(session)
        patients = [add_patient(session, team, local(D - 400 * DAY), f"p{n}") for n in range(OPEN_TASKS)]
        _fill(session, team, patients)
        session.commit()
    with engine.connect() as connection:
        connection.execute(text("ANALYZE"))
        connection.commit()
    yield engine, team
    engine.dispose()


def _relation_scans(plan: dict[str, Any]) -> Iterator[tuple[str, str, int]]:
    """(node type, relation, rows it produced over all loops) of every node reading a table."""
    if "Relation Name" in plan:
        yield plan["Node Type"], plan["Relation Name"], plan["Actual Rows"] * plan["Actual Loops"]
    for child in plan.get("Plans", []):
        yield from _relation_scans(child)


@pytest.mark.postgres
def test_marking_overdue_reads_the_open_tasks_not_the_closed_history(county: tuple[Engine, int]) -> None:
    engine, team = county
    plans: list[dict[str, Any]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def explain(_conn: Any, cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        if statement.lstrip().startswith("WITH locked"):
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters)
            found = cursor.fetchone()[0]
            plans.append((json.loads(found) if isinstance(found, str) else found)[0]["Plan"])

    with Session(engine) as session:
        event_ = RunEvent("scheduler", "overdue", {"business_date": D.isoformat()}, overdue_on=D)
        marked = issuing_store.mark_overdue(session, Scope((team,), False), D, NOW, event_)
        session.rollback()  # the EXPLAIN ANALYZE marked them first: the statement itself found none

    assert marked == []
    (plan,) = plans
    assert plan["Actual Rows"] == NEWLY_OVERDUE
    task_reads = [(node, rows) for node, relation, rows in _relation_scans(plan) if relation == "care_task"]
    assert task_reads, plan
    assert max(rows for _node, rows in task_reads) <= OPEN_TASKS, task_reads  # no closed task read
