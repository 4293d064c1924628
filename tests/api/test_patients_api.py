"""The ingest API end to end, on SQLite and on PostgreSQL: patients, reading batches, assessments."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from pathway.clinical.clock import FixedClock
from pathway.ingest.cases import case_history, read_case
from pathway.settings import Settings
from rules.evaluation import Evaluator
from rules.registry import LoadedPack
from tests.builders import AS_OF

PATIENT: dict[str, Any] = {
    "source_system": "ehr-jimo",
    "external_id": "370282-000123",
    "name": "王建国",
    "sex": "male",
    "birth_date": "1962-04-10",
    "conditions": ["hypertension"],
    "complications": [],
}


def _patient(client: TestClient, **changes: Any) -> int:
    response = client.post("/v1/patients", json={**PATIENT, **changes})
    assert response.status_code in (200, 201), response.text
    patient_id: int = response.json()["id"]
    return patient_id


def _bp(systolic: int, diastolic: int, at: str, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "bp",
        "systolic": systolic,
        "diastolic": diastolic,
        "source": "home",
        "measured_at": at,
        **extra,
    }


def test_registering_twice_updates_the_same_patient(client: TestClient) -> None:
    first = client.post("/v1/patients", json=PATIENT)
    again = client.post("/v1/patients", json={**PATIENT, "conditions": ["hypertension", "diabetes"]})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert again.json()["conditions"] == ["diabetes", "hypertension"]


def test_a_posted_crisis_re_tiers_the_patient_in_the_same_request(client: TestClient) -> None:
    patient_id = _patient(client)
    batch = [
        _bp(186, 104, "2026-03-01T07:00:00+08:00", source_reading_id="r1"),
        _bp(188, 106, "2026-03-01T07:10:00+08:00", source_reading_id="r2"),
    ]
    response = client.post(f"/v1/patients/{patient_id}/readings", json=batch)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["created"], body["duplicate"], body["rejected"]) == (2, 0, 0)
    assert body["assessment"]["tier"] == "red"
    assert body["assessment"]["referral_urgency"] == "urgent"
    summary = client.get(f"/v1/patients/{patient_id}").json()
    assert summary["assessment"]["tier"] == "red"
    assert summary["assessment"]["pack_version"] == "2020.4"


def test_replaying_a_batch_stores_each_reading_once(client: TestClient) -> None:
    patient_id = _patient(client)
    batch = [
        _bp(130 + i % 20, 80, f"2026-02-{1 + i // 10:02d}T{8 + i % 10:02d}:00:00+08:00") for i in range(100)
    ]
    first = client.post(f"/v1/patients/{patient_id}/readings", json=batch).json()
    replays = [client.post(f"/v1/patients/{patient_id}/readings", json=batch).json() for _ in range(2)]
    assert first["created"] == 100
    for replay in replays:
        assert (replay["created"], replay["duplicate"]) == (0, 100)
        assert [i["reading_id"] for i in replay["items"]] == [i["reading_id"] for i in first["items"]]


def test_a_bad_item_is_rejected_with_its_field_and_the_rest_are_stored(client: TestClient) -> None:
    patient_id = _patient(client)
    batch = [
        _bp(130, 80, "2026-02-27T08:00:00+08:00"),
        _bp(310, 80, "2026-02-27T09:00:00+08:00"),
        {
            "kind": "fpg",
            "value": 6,
            "unit": "g/L",
            "source": "home",
            "measured_at": "2026-02-27T10:00:00+08:00",
        },
        _bp(130, 80, "2026-03-01T10:00:00+08:00"),  # an hour after the clock: in the future
    ]
    body = client.post(f"/v1/patients/{patient_id}/readings", json=batch).json()
    assert [i["status"] for i in body["items"]] == ["created", "rejected", "rejected", "rejected"]
    errors = [i["error"] for i in body["items"][1:]]
    assert [(e["code"], e["field"]) for e in errors] == [
        ("implausible-value", "readings.1.systolic"),
        ("unknown-unit", "readings.2.unit"),
        ("future-timestamp", "readings.3.measured_at"),
    ]


def test_mg_per_dl_and_kpa_are_converted_and_kept_as_received(client: TestClient) -> None:
    patient_id = _patient(client, conditions=["diabetes"])
    batch = [
        {
            "kind": "rpg",
            "value": 69,
            "unit": "mg/dL",
            "source": "cgm",
            "measured_at": "2026-02-28T03:15:00+08:00",
        },
        {**_bp(0, 0, "2026-02-28T08:00:00+08:00"), "systolic": "24.0", "diastolic": "12.0", "unit": "kPa"},
    ]
    body = client.post(f"/v1/patients/{patient_id}/readings", json=batch).json()
    assert body["created"] == 2
    facts = body["assessment"]["result"]["facts"]
    assert facts["self_monitored_glucose_min"] == 3.8
    assert "glu.hypo.mild" in [r["rule_id"] for r in body["assessment"]["result"]["reasons"]]


def test_errors_have_one_shape(client: TestClient) -> None:
    missing = client.get("/v1/patients/999999")
    assert missing.status_code == 404
    assert missing.json() == {
        "code": "unknown-patient",
        "message": "no patient with id 999999",
        "field": "patient_id",
    }
    invalid = client.post("/v1/patients", json={**PATIENT, "conditions": ["gout"]})
    assert invalid.status_code == 422
    assert invalid.json()["code"] == "unknown-code"
    assert invalid.json()["field"] == "conditions.0"
    too_many = client.post("/v1/patients/1/readings", json=[_bp(130, 80, "2026-02-27T08:00:00+08:00")] * 1001)
    assert too_many.status_code == 413  # over the batch limit: refused before any item is looked at
    assert too_many.json()["code"] == "payload-too-large"


def test_the_assessment_after_a_post_matches_pathway_evaluate(
    client: TestClient, evaluator: Evaluator, default_pack: LoadedPack
) -> None:
    from pathlib import Path

    case_path = (
        Path(__file__).parents[1] / "rules" / "cases" / "golden" / "single-home-crisis-needs-recheck.json"
    )
    case = read_case(case_path)
    patient_id = _patient(client, sex="female", birth_date="1965-09-09")
    readings = [
        {
            "kind": "bp",
            "systolic": 135,
            "diastolic": 85,
            "source": "clinic",
            "measured_at": "2026-02-10T10:00:00+08:00",
        },
        _bp(185, 100, "2026-03-01T07:30:00+08:00"),
    ]
    body = client.post(f"/v1/patients/{patient_id}/readings", json=readings).json()
    expected = evaluator.assess(
        case_history(case, default_pack.pack.units, default_pack.pack.plausibility), case.as_of, default_pack
    )
    stored = body["assessment"]["result"]
    assert stored["tier"] == expected.tier.value
    assert stored["follow_up"]["due"] == expected.follow_up.due.isoformat()
    assert sorted(r["rule_id"] for r in stored["reasons"]) == sorted(r.rule_id for r in expected.reasons)
    assert {t["kind"] for t in stored["tasks"]} == {t.kind.value for t in expected.tasks}


def test_the_history_lists_every_assessment_with_provenance(client: TestClient) -> None:
    patient_id = _patient(client)
    client.post(f"/v1/patients/{patient_id}/readings", json=[_bp(130, 80, "2026-02-27T08:00:00+08:00")])
    history = client.get(f"/v1/patients/{patient_id}/assessments").json()
    assert len(history) == 2
    assert all(len(a["pack_sha256"]) == 64 for a in history)


def test_an_unreachable_database_is_503_with_retry_after(evaluator: Evaluator) -> None:
    settings = Settings(database_url="postgresql://postgres@127.0.0.1:1/nowhere")
    app = create_app(settings, clock=FixedClock(AS_OF), evaluator=evaluator)
    with TestClient(app) as client:
        response = client.get("/v1/patients/1", headers={"X-API-Key": "pw_0123456789ab_secret"})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json()["code"] == "database-unavailable"


def test_an_idempotency_key_replays_the_first_answer(client: TestClient) -> None:
    patient_id = _patient(client)
    batch = [_bp(150, 95, "2026-02-27T08:00:00+08:00"), _bp(152, 96, "2026-02-28T08:00:00+08:00")]
    headers = {"Idempotency-Key": "gw-7-batch-000042"}
    first = client.post(f"/v1/patients/{patient_id}/readings", json=batch, headers=headers)
    again = client.post(f"/v1/patients/{patient_id}/readings", json=batch, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert len(client.get(f"/v1/patients/{patient_id}/assessments").json()) == 2  # registration + one batch
    reordered = json.dumps([dict(reversed(item.items())) for item in batch], indent=2)  # same body
    same = client.post(
        f"/v1/patients/{patient_id}/readings",
        content=reordered,
        headers={**headers, "Content-Type": "application/json"},
    )
    assert (same.status_code, same.json()) == (201, first.json())
    other = client.post(f"/v1/patients/{patient_id}/readings", json=batch[:1], headers=headers)
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency-key-reused"


def _device_batch(size: int) -> list[dict[str, Any]]:
    """A wearable's burst: one reading a minute, deterministic values, each with its gateway id."""
    return [
        {
            **_bp(
                120 + i % 40,
                70 + i % 25,
                f"2026-02-2{1 + i // 600}T{(i // 60) % 10 + 8:02d}:{i % 60:02d}:00+08:00",
            ),
            "source": "wearable",
            "device_id": "band-001",
            "source_reading_id": f"band-001-{i}",
        }
        for i in range(size)
    ]


def test_replaying_a_1000_reading_batch_three_times_stores_1000_rows(client: TestClient) -> None:
    patient_id = _patient(client)
    batch = _device_batch(1000)
    answers = [client.post(f"/v1/patients/{patient_id}/readings", json=batch).json() for _ in range(3)]
    assert [(a["created"], a["duplicate"]) for a in answers] == [(1000, 0), (0, 1000), (0, 1000)]
    assert len({i["reading_id"] for a in answers for i in a["items"]}) == 1000


def test_a_batch_with_10_bad_items_stores_the_other_990_and_names_the_10(client: TestClient) -> None:
    patient_id = _patient(client)
    batch = _device_batch(1000)
    bad = list(range(5, 1000, 100))
    for index in bad:
        batch[index] = {**batch[index], "systolic": 400}
    body = client.post(f"/v1/patients/{patient_id}/readings", json=batch).json()
    assert (body["created"], body["rejected"]) == (990, 10)
    rejected = [(i["index"], i["error"]["field"]) for i in body["items"] if i["status"] == "rejected"]
    assert rejected == [(index, f"readings.{index}.systolic") for index in bad]


def test_a_reading_twice_in_one_batch_is_stored_once(client: TestClient) -> None:
    patient_id = _patient(client)
    reading = _bp(150, 95, "2026-02-27T08:00:00+08:00")
    same_instant = _bp(150, 95, "2026-02-27T00:00:00+00:00")  # the same instant, another offset
    body = client.post(f"/v1/patients/{patient_id}/readings", json=[reading, same_instant]).json()
    assert [i["status"] for i in body["items"]] == ["created", "duplicate"]
    assert body["items"][0]["reading_id"] == body["items"][1]["reading_id"]


# --- Items that are not readings (wrong type, unknown code, missing or extra field): rejected items ----

CRISIS = [
    _bp(186, 104, "2026-03-01T07:00:00+08:00"),
    _bp(188, 106, "2026-03-01T07:10:00+08:00"),
    _bp(184, 102, "2026-03-01T07:20:00+08:00"),
]
MALFORMED: dict[str, tuple[dict[str, Any] | int, str]] = {
    "wrong-type": ({**CRISIS[0], "systolic": "一百八十"}, "systolic"),
    "unknown-kind": ({**CRISIS[0], "kind": "bp-cuff"}, "kind"),
    "nul-in-unit": ({**CRISIS[0], "unit": "mm\u0000Hg"}, "unit"),
    "extra-field": ({**CRISIS[0], "note": "after coffee"}, "note"),
    "missing-measured-at": ({k: v for k, v in CRISIS[0].items() if k != "measured_at"}, "measured_at"),
    "unknown-source": ({**CRISIS[0], "source": "fax"}, "source"),
    "long-device-id": ({**CRISIS[0], "device_id": "d" * 129}, "device_id"),
    "malformed-measured-at": ({**CRISIS[0], "measured_at": "yesterday 7am"}, "measured_at"),
    "naive-measured-at": ({**CRISIS[0], "measured_at": "2026-03-01T07:00:00"}, "measured_at"),
    "nan": ({**CRISIS[0], "diastolic": float("nan")}, "diastolic"),
}


def _with_malformed(first: str, second: str) -> tuple[list[Any], str, str]:
    """The three crisis readings at 0, 2 and 4; the malformed ``first`` at 1 and ``second`` at 3."""
    (item_1, field_1), (item_3, field_3) = MALFORMED[first], MALFORMED[second]
    return [CRISIS[0], item_1, CRISIS[1], item_3, CRISIS[2]], f"readings.1.{field_1}", f"readings.3.{field_3}"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("wrong-type", "unknown-kind"),
        ("nul-in-unit", "extra-field"),
        ("missing-measured-at", "unknown-source"),
        ("long-device-id", "malformed-measured-at"),
        ("naive-measured-at", "nan"),
    ],
)
def test_malformed_items_are_rejected_naming_their_field_and_the_rest_are_stored_and_assessed(
    client: TestClient, first: str, second: str
) -> None:
    patient_id = _patient(client)
    batch, field_1, field_3 = _with_malformed(first, second)
    content = json.dumps(batch, ensure_ascii=False)  # NaN as the bare token a gateway may send
    url = f"/v1/patients/{patient_id}/readings"
    response = client.post(url, content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["created"], body["duplicate"], body["rejected"]) == (3, 0, 2)
    assert [i["status"] for i in body["items"]] == ["created", "rejected", "created", "rejected", "created"]
    errors = [body["items"][index]["error"] for index in (1, 3)]
    codes = ["unknown-code" if name.startswith("unknown-") else "invalid-input" for name in (first, second)]
    assert [(e["code"], e["field"]) for e in errors] == list(zip(codes, (field_1, field_3), strict=True))
    assert all(e["message"] for e in errors)
    assert "\u0000" not in response.text
    facts = body["assessment"]["result"]["facts"]
    assert facts["home_bp_reading_count"] == 3  # the stored three, and nothing of the rejected two
    assert body["assessment"]["tier"] == "red"
    assert client.get(f"/v1/patients/{patient_id}").json()["assessment"] == body["assessment"]


def test_an_item_that_is_not_a_json_object_is_a_rejected_item(client: TestClient) -> None:
    patient_id = _patient(client)
    batch = [CRISIS[0], 186, None, "bp 186/104", [CRISIS[1]], CRISIS[2]]
    body = client.post(f"/v1/patients/{patient_id}/readings", json=batch).json()
    assert (body["created"], body["rejected"]) == (2, 4)
    rejected = [(i["index"], i["error"]["code"], i["error"]["field"]) for i in body["items"][1:5]]
    assert rejected == [(index, "invalid-input", f"readings.{index}") for index in range(1, 5)]


def test_a_retry_of_a_batch_with_malformed_items_replays_the_first_answer(client: TestClient) -> None:
    patient_id = _patient(client)
    batch, _field_1, _field_3 = _with_malformed("nul-in-unit", "missing-measured-at")
    headers = {"Idempotency-Key": "gw-7-batch-000043"}
    first = client.post(f"/v1/patients/{patient_id}/readings", json=batch, headers=headers)
    again = client.post(f"/v1/patients/{patient_id}/readings", json=batch, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert (first.json()["created"], first.json()["rejected"]) == (3, 2)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert len(client.get(f"/v1/patients/{patient_id}/assessments").json()) == 2  # registration + one batch
    other_bad, _, _ = _with_malformed("nul-in-unit", "extra-field")  # only an invalid item differs
    other = client.post(f"/v1/patients/{patient_id}/readings", json=other_bad, headers=headers)
    assert (other.status_code, other.json()["code"]) == (409, "idempotency-key-reused")
    unkeyed = client.post(f"/v1/patients/{patient_id}/readings", json=batch).json()
    assert (unkeyed["created"], unkeyed["duplicate"], unkeyed["rejected"]) == (0, 3, 2)


@pytest.mark.parametrize(
    "body",
    [CRISIS[0], {"readings": CRISIS}, "bp 186/104", 186, None],
    ids=["one-reading", "wrapped", "string", "number", "null"],
)
def test_a_body_that_is_not_an_array_refuses_the_whole_request(client: TestClient, body: Any) -> None:
    patient_id = _patient(client)
    response = client.post(f"/v1/patients/{patient_id}/readings", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid-input"
    assert len(client.get(f"/v1/patients/{patient_id}/assessments").json()) == 1  # registration only
