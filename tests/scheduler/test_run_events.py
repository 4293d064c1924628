"""The daily run's events go into the outbox in its own transaction, on both databases: a task
marked overdue or escalated and a contact flag raised is one event each, once."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from pathway.clinical.policy import FollowThrough
from pathway.store.work_tables import OutboxEvent
from pathway.tasks import issuing
from tests.scheduler.conftest import DAY, add_patient, add_reading, add_task, add_team, local

D = date(2026, 3, 10)
NOW = local(D, 6, 0)


def _events(session: Session) -> list[OutboxEvent]:
    return list(session.exec(select(OutboxEvent).order_by(col(OutboxEvent.id))))


def test_overdue_escalated_and_flagged_are_events_once(engine: Engine, rules: FollowThrough) -> None:
    with Session(engine) as session:
        team = add_team(session)
        seen = add_patient(session, team, local(D - 200 * DAY), "seen")
        add_reading(session, seen, local(D - DAY))
        red = add_task(session, seen, team, local(D - 3 * DAY, 9), tier="red")
        yellow = add_task(session, seen, team, local(D - DAY, 9), kind="data_gap", tier="yellow")
        silent = add_patient(session, team, local(D - 400 * DAY), "silent")  # no contact for 400 days
        session.commit()

        issuing.issue_due(session, NOW, rules)
        session.rollback()  # a run that does not commit leaves no event
        assert _events(session) == []

        issuing.issue_due(session, NOW, rules)
        session.commit()
        issuing.issue_due(session, NOW + DAY / 24, rules)  # the same date again: no new event
        session.commit()
        found = {
            (e.kind, e.payload.get("task_id"), e.payload.get("flag"), e.patient_id) for e in _events(session)
        }
        events = _events(session)

    assert found == {
        ("task_overdue", red, None, seen),
        ("task_overdue", yellow, None, seen),
        ("task_escalated", red, None, seen),
        ("contact_flag_raised", None, "missed_3m", silent),
        ("contact_flag_raised", None, "lost_to_follow_up", silent),
    }
    assert len(events) == len(found)
    escalated = next(e for e in events if e.kind == "task_escalated")
    assert escalated.team_id == team
    assert escalated.occurred_at == NOW
    assert escalated.payload == {
        "task_id": red,
        "tier": "red",
        "task_kind": "follow_up_visit",
        "pack_version": "2020.4",
    }
