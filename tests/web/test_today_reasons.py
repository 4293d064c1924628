"""The reasons line of an item on 今日任务: the messages of the patient's newest assessment, in the
page's language."""

from __future__ import annotations

from html import escape

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from pathway.store.tables import AssessmentRecord
from tests.web.conftest import sign_in
from tests.web.world import World


def _newest_reasons(app: FastAPI, patient_id: int) -> list[dict[str, str]]:
    with Session(app.state.engine) as session:
        records = session.exec(
            select(AssessmentRecord)
            .where(AssessmentRecord.patient_id == patient_id)
            .order_by(col(AssessmentRecord.id).desc())
        ).all()
    assert len(records) > 1  # older assessments to tell the newest from
    reasons: list[dict[str, str]] = records[0].result["reasons"]
    return reasons


def test_an_item_gives_the_reasons_of_the_patients_newest_assessment_in_the_pages_language(
    app: FastAPI, client: TestClient, world: World
) -> None:
    sign_in(client, world.keys["team-a"])
    today = f"/workbench/teams/{world.team_a}/today"
    reasons = _newest_reasons(app, world.patients["A-001"])
    assert reasons
    chinese = escape("；".join(r["message"] for r in reasons))
    english = escape("; ".join(r["message_en"] for r in reasons))
    assert f'<p class="reason">{chinese}</p>' in client.get(today).text
    assert f'<p class="reason">{english}</p>' in client.get(today + "?lang=en").text
