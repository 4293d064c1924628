"""Issue #16 item 5: the §7 team indicators (规律服药率, 他汀使用率 ×2, 降压药联合治疗率), each
numerator and denominator worked out by hand for a small team posted over HTTP."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient

from tests.api.conftest import register_patient, two_teams
from tests.builders import AS_OF

TODAY = AS_OF.date()


def _at(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T09:00:00+08:00")


def _rx(client: TestClient, patient_id: int, source_id: str, atc: str, started_on: str, days: int) -> int:
    item = {
        "source_prescription_id": source_id,
        "atc": atc,
        "drug": source_id,
        "started_on": started_on,
        "supply_days": days,
    }
    response = client.post(f"/v1/patients/{patient_id}/prescriptions", json=[item])
    assert response.status_code == 201, response.text
    (created,) = response.json()["items"]
    assert created["status"] == "created", created
    prescription_id: int = created["prescription_id"]
    return prescription_id


def _visit(client: TestClient, patient_id: int, day: str, adherence: str | None, source_id: str) -> None:
    body: dict[str, Any] = {
        "at": _at(day).isoformat(),
        "source_encounter_id": source_id,
        "readings": [{"kind": "bp", "systolic": 136, "diastolic": 84}],
        "medications_reviewed": True,
    }
    if adherence is not None:
        body["adherence"] = adherence
    response = client.post(f"/v1/patients/{patient_id}/encounters", json=body)
    assert response.status_code == 201, response.text


def _rate(body: dict[str, Any], name: str) -> tuple[list[int], list[int]]:
    rate = body[name]
    assert rate["numerator"] == len(rate["numerator_patient_ids"])
    assert rate["denominator"] == len(rate["denominator_patient_ids"])
    return sorted(rate["numerator_patient_ids"]), sorted(rate["denominator_patient_ids"])


def test_medication_indicators_match_hand_computed_numerators_and_denominators(client: TestClient) -> None:
    team, _ = two_teams(client)
    ours = {"birth_date": "1966-01-01", "team_code": "jimo-01"}
    chd = [{"code": "chd", "onset": "2024-01-01"}]
    stroke = [{"code": "stroke", "onset": "2023-05-01"}]
    # combo: hypertensive on one single-pill combination (ARB + CCB): two classes
    combo = register_patient(client, "combo", **ours)
    # lapsed: hypertensive, a CCB whose supply ended > 30 d ago and a current thiazide: one class
    lapsed = register_patient(client, "lapsed", **ours)
    # stopped: hypertensive ASCVD patient whose statin was stopped before the period end, no adherence
    stopped = register_patient(client, "stopped", complications=chd, **ours)
    # statin: diabetic ASCVD patient on a statin
    statin = register_patient(client, "statin", conditions=["diabetes"], complications=stroke, **ours)
    # high: diabetic, 60 (stratum high), no prescription, adherence recorded only > 365 d ago
    high = register_patient(client, "high", conditions=["diabetes"], **ours)
    # another team's patient on a statin with ASCVD: never counted
    other = register_patient(client, "other", complications=chd, birth_date="1966-01-01")

    _rx(client, combo, "rx-combo", "C09DB01", "2026-02-01", 56)
    _rx(client, lapsed, "rx-ccb", "C08CA01", "2025-12-01", 30)
    _rx(client, lapsed, "rx-hctz", "C03AA03", "2026-02-01", 30)
    statin_rx = _rx(client, stopped, "rx-atorva", "C10AA05", "2025-10-01", 180)
    stop = client.post(
        f"/v1/patients/{stopped}/prescriptions/{statin_rx}/stop", json={"stopped_on": "2026-01-20"}
    )
    assert stop.status_code == 201, stop.text
    _rx(client, statin, "rx-rosuva", "C10AA07", "2026-01-01", 90)
    _rx(client, other, "rx-other", "C10AA07", "2026-01-01", 90)

    _visit(client, combo, "2026-02-10", "regular", "v-combo")
    _visit(client, lapsed, "2025-06-01", "regular", "v-lapsed-1")
    _visit(client, lapsed, "2026-01-15", "intermittent", "v-lapsed-2")
    _visit(client, stopped, "2026-02-01", None, "v-stopped")
    _visit(client, statin, "2026-02-20", "regular", "v-statin")
    _visit(client, high, "2024-12-01", "regular", "v-high")
    _visit(client, other, "2026-02-20", "none", "v-other")

    response = client.get(f"/v1/teams/{team}/indicators", params={"to": TODAY.isoformat(), "detail": True})
    assert response.status_code == 200, response.text
    body = response.json()

    assert _rate(body, "regular_adherence") == ([combo, statin], sorted([combo, lapsed, statin]))
    assert _rate(body, "statin_use_ascvd") == ([statin], sorted([stopped, statin]))
    assert _rate(body, "statin_use_high_risk") == ([statin], sorted([stopped, statin, high]))
    assert _rate(body, "antihypertensive_combination") == ([combo], sorted([combo, lapsed]))
    assert body["regular_adherence"]["rate"] == round(2 / 3, 4)
    assert body["statin_use_ascvd"]["rate"] == 0.5

    plain = client.get(f"/v1/teams/{team}/indicators", params={"to": TODAY.isoformat()}).json()
    assert plain["antihypertensive_combination"] == {
        "numerator": 1,
        "denominator": 2,
        "rate": 0.5,
        "numerator_patient_ids": None,
        "denominator_patient_ids": None,
    }
