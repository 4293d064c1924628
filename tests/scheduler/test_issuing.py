"""The daily run on both databases: issue once, overdue, escalation and contact flags at their boundaries."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from pathway.clinical.policy import FollowThrough
from pathway.store.work_tables import CareTask, CareTaskEvent, PatientFlag
from pathway.tasks import issuing
from tests.scheduler.conftest import DAY, add_patient, add_reading, add_task, add_team, local

D = date(2026, 3, 10)  # the business date of the run (Asia/Shanghai)
NOW = local(D, 6, 0)


def _events(session: Session, action: str) -> Counter[int]:
    rows = session.exec(select(CareTaskEvent.task_id).where(col(CareTaskEvent.action) == action)).all()
    return Counter(rows)


def test_the_daily_run_issues_what_falls_due_once_and_marks_overdue(
    engine: Engine, rules: FollowThrough
) -> None:
    with Session(engine) as session:
        team = add_team(session)
        patient = add_patient(session, team, local(D - 200 * DAY))
        add_reading(session, patient, local(D - DAY))
        yesterday = add_task(session, patient, team, local(D - DAY, 15), kind="follow_up_visit")
        tonight = add_task(session, patient, team, local(D, 23, 59), kind="data_gap")
        tomorrow = add_task(session, patient, team, local(D + DAY, 0, 0), kind="lipid_recheck")
        teamless = add_patient(session, None, local(D - 200 * DAY), "nobody")
        add_reading(session, teamless, local(D - DAY))
        orphan = add_task(session, teamless, None, local(D, 8), kind="annual_check")
        session.commit()

        report = issuing.issue_due(session, NOW, rules)
        session.commit()
        assert (report.issued, report.overdue, report.escalated) == (3, 1, 0)
        assert set(_events(session, "issued")) == {yesterday, tonight, orphan}
        assert set(_events(session, "overdue")) == {yesterday}
        stored = {t.id: t for t in session.exec(select(CareTask))}
        assert stored[tomorrow].issued_at is None
        assert stored[tonight].issued_at == NOW

        again = issuing.issue_due(session, NOW + DAY / 24, rules)  # the same date again: nothing new
        session.commit()
        assert again.as_dict() == dict.fromkeys(again.as_dict(), 0)
        assert max(_events(session, "issued").values()) == 1


def test_a_red_task_is_escalated_from_3_days_overdue_not_2(engine: Engine, rules: FollowThrough) -> None:
    assert (rules.escalation.tier.value, rules.escalation.overdue_days) == ("red", 3)
    with Session(engine) as session:
        team = add_team(session)
        patient = add_patient(session, team, local(D - 30 * DAY))
        add_reading(session, patient, local(D - DAY))
        two_days = add_task(session, patient, team, local(D - 2 * DAY, 23, 59), kind="bp_recheck", tier="red")
        three_days = add_task(session, patient, team, local(D - 3 * DAY, 23, 59), kind="data_gap", tier="red")
        add_task(session, patient, team, local(D - 9 * DAY), kind="follow_up_visit", tier="yellow")
        add_task(
            session,
            patient,
            team,
            local(D - 9 * DAY),
            kind="lipid_recheck",
            tier="red",
            snoozed_until=NOW + 2 * DAY,
        )
        session.commit()

        report = issuing.issue_due(session, NOW, rules)
        session.commit()
        assert report.escalated == 1
        assert set(_events(session, "escalated")) == {three_days}
        event = session.exec(select(CareTaskEvent).where(col(CareTaskEvent.action) == "escalated")).one()
        assert event.details == {"business_date": "2026-03-10", "to": "team_lead", "days_overdue": 3}

        report = issuing.issue_due(session, local(D + DAY, 6), rules)  # the next day: now 3 days overdue
        session.commit()
        assert set(_events(session, "escalated")) == {two_days, three_days}
        assert max(_events(session, "escalated").values()) == 1


def test_missed_3m_from_90_days_and_lost_to_follow_up_from_365(engine: Engine, rules: FollowThrough) -> None:
    assert (rules.missed_3m.no_contact_days, rules.lost_to_follow_up.no_contact_days) == (90, 365)
    with Session(engine) as session:
        team = add_team(session)
        registered = local(D - 800 * DAY)
        last_contact = {89: (D - 89 * DAY, 0, 0), 90: (D - 90 * DAY, 23, 59), 364: (D - 364 * DAY, 0, 0)}
        last_contact[365] = (D - 365 * DAY, 23, 59)
        patients = {}
        for days, (day, hour, minute) in last_contact.items():
            patients[days] = add_patient(session, team, registered, f"p{days}")
            add_reading(session, patients[days], local(day, hour, minute))
            add_reading(session, patients[days], local(day - 40 * DAY))
        never_seen = add_patient(session, team, local(D - 90 * DAY, 8), "new")  # registered 90 days ago
        session.commit()

        report = issuing.issue_due(session, NOW, rules)
        session.commit()
        flags = {(f.patient_id, f.flag) for f in session.exec(select(PatientFlag))}
        assert flags == {
            (patients[90], "missed_3m"),
            (patients[364], "missed_3m"),
            (patients[365], "missed_3m"),
            (patients[365], "lost_to_follow_up"),
            (never_seen, "missed_3m"),
        }
        assert (report.missed_3m, report.lost_to_follow_up) == (4, 1)

        assert issuing.issue_due(session, NOW, rules).missed_3m == 0  # raised once
        add_reading(session, patients[90], NOW)  # seen again: the flag is cleared, not raised anew
        report = issuing.issue_due(session, local(D + DAY, 6), rules)
        session.commit()
        active = {(f.patient_id, f.flag) for f in session.exec(select(PatientFlag)) if f.cleared_at is None}
        assert (patients[90], "missed_3m") not in active
        assert (patients[89], "missed_3m") in active  # 90 days on the next day
        assert report.flags_cleared == 1


def test_the_database_refuses_a_second_open_task_of_a_kind(engine: Engine) -> None:
    with Session(engine) as session:
        team = add_team(session)
        patient = add_patient(session, team, NOW)
        add_task(session, patient, team, NOW, kind="complication_screening", subject="fundus")
        add_task(session, patient, team, NOW, kind="complication_screening", subject="foot")
        with pytest.raises(IntegrityError):
            add_task(session, patient, team, NOW + DAY, kind="complication_screening", subject="foot")
