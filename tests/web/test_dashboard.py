"""The team dashboard shows the indicators API's numbers: now, and at every month end of its trend."""

from __future__ import annotations

import re
import time
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.web import dashboard
from api.web.common import build_state
from api.web.session import WebSettings
from pathway.clinical.clock import CLINIC_TZ
from scheduler import jobs
from scheduler.retier_job import run_retier
from tests.api.conftest import SettableClock
from tests.web.conftest import NOW, sign_in
from tests.web.world import World

RATES = ("bp_control", "glucose_control", "standard_management", "hearts_bp_control")


def _api(app: FastAPI, world: World, **params: str) -> dict[str, Any]:
    client = TestClient(app, headers={"Authorization": f"Bearer {world.keys['admin']}"})
    answer = client.get(f"/v1/teams/{world.team_a}/indicators", params=params)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _counts(rate: Any) -> tuple[int, int]:
    if isinstance(rate, dict):
        return rate["numerator"], rate["denominator"]
    return rate.numerator, rate.denominator


def test_the_dashboard_shows_what_the_indicators_api_answers(
    client: TestClient, app: FastAPI, world: World
) -> None:
    sign_in(client, world.keys["team-a"])
    html = client.get(f"/workbench/teams/{world.team_a}/dashboard").text
    assert "data-computing" not in html
    api = _api(app, world)
    for name in RATES:
        found = re.search(rf'data-indicator="{name}" data-numerator="(\d+)" data-denominator="(\d+)"', html)
        assert found is not None, name
        assert (int(found.group(1)), int(found.group(2))) == _counts(api[name]), name
    managed = re.search(r'data-indicator="managed">.*?class="kpi-value">(\d+)<', html, re.S)
    assert managed is not None
    assert int(managed.group(1)) == api["managed_patients"] == 4
    for tier, count in api["tier_distribution"].items():
        assert f'<li data-tier="{tier}"><span class="chip tier-{tier}">' in html
        assert re.search(rf'<li data-tier="{tier}">.*?</span> {count}</li>', html), tier
    overdue = re.search(r'data-section="overdue"><h2>[^<]*<span class="muted">(\d+)</span>', html)
    assert overdue is not None
    assert int(overdue.group(1)) == sum(api["overdue_tasks_by_priority"].values())
    assert f"<strong>{api['encounters_in_period']}</strong>" in html
    trend = re.search(r'data-chart="indicators" data-points="(\d+)" data-months="(\d+)"', html)
    assert trend is not None
    assert trend.group(2) == "12"


def test_every_month_end_of_the_trend_is_the_apis_answer_for_that_day(app: FastAPI, world: World) -> None:
    data = dashboard.compute(app.state.engine, app.state.pathway, world.team_a, "Asia/Shanghai", 12, NOW)
    assert len(data.moments) == len(data.trend) == 12
    assert data.moments[-1] == NOW
    for moment, computed in zip(data.moments, data.trend, strict=True):
        day = moment.date().isoformat()
        api = _api(app, world, to=day, **{"from": day})
        assert computed.managed_patients == api["managed_patients"], day
        for name in RATES:
            assert _counts(getattr(computed, name)) == _counts(api[name]), (day, name)
        assert {k: _counts(v) for k, v in computed.ldl_control_by_stratum.items()} == {
            k: _counts(v) for k, v in api["ldl_control_by_stratum"].items()
        }, day
    assert data.current.tier_distribution == _api(app, world)["tier_distribution"]


def test_a_slow_computation_answers_at_once_and_the_page_refreshes_itself(
    client: TestClient, app: FastAPI, world: World
) -> None:
    app.state.web = build_state(WebSettings(dashboard_wait_seconds=0))
    sign_in(client, world.keys["team-a"])
    first = client.get(f"/workbench/teams/{world.team_a}/dashboard?months=6")
    if "data-computing" in first.text:  # it did not finish before the page answered
        assert '<meta http-equiv="refresh" content="1">' in first.text
    for _ in range(100):
        page = client.get(f"/workbench/teams/{world.team_a}/dashboard?months=6")
        if "data-computing" not in page.text:
            break
        time.sleep(0.05)
    assert 'data-chart="indicators"' in page.text


MEDICATION_RATES = (
    "regular_adherence",
    "statin_use_ascvd",
    "statin_use_high_risk",
    "antihypertensive_combination",
)


def test_the_dashboard_shows_the_medication_indicators_of_the_api(
    client: TestClient, app: FastAPI, world: World
) -> None:
    admin = TestClient(app, headers={"Authorization": f"Bearer {world.keys['admin']}"})
    hypertensive = _api(app, world, detail="true")["bp_control"]["denominator_patient_ids"]
    patient_id = hypertensive[0]
    pill = {
        "source_prescription_id": "rx-combo",
        "atc": "C09DB01",
        "drug": "缬沙坦氨氯地平片",
        "started_on": (NOW.date().replace(day=1)).isoformat(),
        "supply_days": 30,
    }
    assert admin.post(f"/v1/patients/{patient_id}/prescriptions", json=[pill]).status_code == 201
    visit = {"at": NOW.replace(hour=8).isoformat(), "medications_reviewed": True, "adherence": "regular"}
    assert admin.post(f"/v1/patients/{patient_id}/encounters", json=visit).status_code == 201

    sign_in(client, world.keys["team-a"])
    html = client.get(f"/workbench/teams/{world.team_a}/dashboard").text
    assert 'data-section="medication"' in html
    api = _api(app, world)
    assert _counts(api["antihypertensive_combination"]) == (1, 1)
    assert _counts(api["regular_adherence"]) == (1, 1)
    for name in MEDICATION_RATES:
        found = re.search(rf'data-indicator="{name}" data-numerator="(\d+)" data-denominator="(\d+)"', html)
        assert found is not None, name
        assert (int(found.group(1)), int(found.group(2))) == _counts(api[name]), name
    assert "降压药联合治疗率" in html or "Antihypertensive combination" in html


def test_the_dashboard_shows_how_far_the_re_tier_of_the_pack_in_force_has_come(
    client: TestClient, app: FastAPI, world: World
) -> None:
    sign_in(client, world.keys["team-a"])
    assert 'data-section="retier"' not in client.get(f"/workbench/teams/{world.team_a}/dashboard").text

    pack = app.state.registry.in_force("sangao-cn", on=None)
    ctx = jobs.Context(
        engine=app.state.engine,
        clock=SettableClock(NOW),
        rules=pack.pack.policy.follow_through,
        default_zone=CLINIC_TZ,
    )
    progress = run_retier(ctx, app.state.pathway)
    assert progress is not None

    html = client.get(f"/workbench/teams/{world.team_a}/dashboard").text
    card = re.search(
        r'data-section="retier" data-seen="(\d+)" data-total="(\d+)" data-assessed="(\d+)"'
        r' data-finished="(\w+)"',
        html,
    )
    assert card is not None
    assert card.groups() == (str(progress.seen), str(progress.total), str(progress.assessed), "true")
    assert progress.seen == progress.total > 0
    assert app.state.pathway.pack.version in html
