"""Property: a generated history posted through the API, one post at a time as it happens, leaves
the stored tier, referral and tasks that `pathway evaluate` gives for the same history and moment.

The histories are made to stress PATHWAY.md §2: bursts of home/wearable crisis readings a few
minutes apart, loose clinic readings on the day of a visit, visits with several readings, lab values.
Both stores (the ``client`` fixture is parametrized); one patient per example.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, note, settings
from hypothesis import strategies as st

from pathway.clinical.clock import CLINIC_TZ
from pathway.ingest.cases import CaseFile, case_history
from rules.evaluation import Evaluator
from rules.registry import LoadedPack
from tests.api.conftest import SettableClock

START = datetime(2026, 3, 1, 6, 0, tzinfo=CLINIC_TZ)
BIRTH_DATES = ("1950-04-01", "1962-08-15", "1975-01-20")
_patients = itertools.count()

systolic = st.sampled_from([118, 132, 146, 158, 176, 180, 186, 204])
diastolic = st.sampled_from([70, 84, 92, 104, 109, 110, 114])
bp = st.fixed_dictionaries({"kind": st.just("bp"), "systolic": systolic, "diastolic": diastolic})
lab = st.one_of(
    st.fixed_dictionaries({"kind": st.just("ldl_c"), "value": st.sampled_from([1.6, 2.4, 3.3, 4.9])}),
    st.fixed_dictionaries({"kind": st.just("fpg"), "value": st.sampled_from([3.5, 6.1, 7.4, 17.0])}),
)
# Minutes after START: bursts land a few minutes apart, visits and loose readings hours apart.
minutes = st.integers(min_value=0, max_value=36 * 60)

home_bp = st.tuples(st.just("home"), minutes, bp, st.sampled_from(["home", "wearable"]))
clinic_bp = st.tuples(st.just("clinic"), minutes, bp, st.just("clinic"))
lab_value = st.tuples(st.just("lab"), minutes, lab, st.just("lab"))
visit_readings = st.lists(st.one_of(bp, lab), min_size=1, max_size=3)
visit = st.tuples(st.just("visit"), minutes, visit_readings, st.none())
burst = st.tuples(st.just("burst"), minutes, st.lists(st.integers(1, 6), min_size=1, max_size=3), bp)

events = st.lists(st.one_of(home_bp, home_bp, clinic_bp, lab_value, visit, burst), min_size=1, max_size=7)


def _expand(drawn: list[Any]) -> list[tuple[datetime, str, Any]]:
    """(moment, what, payload) in time order; a burst is crisis readings a few minutes apart."""
    found: list[tuple[datetime, str, Any]] = []
    for what, minute, payload, extra in drawn:
        at = START + timedelta(minutes=minute)
        if what == "burst":
            found.append((at, "home", {**extra, "systolic": 186, "diastolic": 112, "source": "wearable"}))
            for gap in payload:
                at += timedelta(minutes=gap)
                found.append((at, "home", {**extra, "systolic": 188, "source": "wearable"}))
        elif what == "visit":
            found.append((at, "visit", payload))
        else:
            found.append((at, "reading", {**payload, "source": extra}))
    found.sort(key=lambda item: item[0])
    unique: list[tuple[datetime, str, Any]] = []
    for item in found:  # one post per instant (a visit's readings share its instant)
        if not unique or item[0] > unique[-1][0]:
            unique.append(item)
    return unique


def _case(birth: str, timeline: list[tuple[datetime, str, Any]], as_of: datetime) -> CaseFile:
    encounters = [{"at": at.isoformat(), "readings": p} for at, what, p in timeline if what == "visit"]
    readings = [{**p, "measured_at": at.isoformat()} for at, what, p in timeline if what != "visit"]
    return CaseFile.model_validate(
        {
            "as_of": as_of.isoformat(),
            "patient": {"sex": "male", "birth_date": birth, "conditions": ["hypertension", "diabetes"]},
            "encounters": encounters,
            "readings": readings,
        }
    )


def _open_tasks(client: TestClient, patient_id: int) -> dict[tuple[str, str], dict[str, Any]]:
    response = client.get(f"/v1/patients/{patient_id}/tasks", params={"status": "open"})
    assert response.status_code == 200, response.text
    return {(t["kind"], t["subject"]): t for t in response.json()}


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(drawn=events, birth=st.sampled_from(BIRTH_DATES), later=st.integers(0, 240))
# Found here: a home crisis never rechecked, then a lab value once it is 24 h old (the recheck lapsed).
@example(
    drawn=[
        ("home", 0, {"kind": "bp", "systolic": 118, "diastolic": 110}, "home"),
        ("lab", 24 * 60, {"kind": "ldl_c", "value": 1.6}, "lab"),
    ],
    birth=BIRTH_DATES[0],
    later=0,
)
def test_the_stored_tier_and_tasks_agree_with_pathway_evaluate(
    client: TestClient,
    clock: SettableClock,
    evaluator: Evaluator,
    default_pack: LoadedPack,
    drawn: list[Any],
    birth: str,
    later: int,
) -> None:
    timeline = _expand(drawn)
    note(f"timeline: {[(at.isoformat(), what, p) for at, what, p in timeline]}")
    clock.at = START - timedelta(minutes=1)
    body = {
        "source_system": "property",
        "external_id": f"p{next(_patients)}",
        "sex": "male",
        "birth_date": birth,
        "conditions": ["hypertension", "diabetes"],
    }
    registered = client.post("/v1/patients", json=body)
    assert registered.status_code == 201, registered.text
    patient_id = registered.json()["id"]

    for at, what, payload in timeline:
        clock.at = at + timedelta(seconds=30)
        if what == "visit":
            response = client.post(
                f"/v1/patients/{patient_id}/encounters", json={"at": at.isoformat(), "readings": payload}
            )
        else:
            reading = {**payload, "measured_at": at.isoformat()}
            response = client.post(f"/v1/patients/{patient_id}/readings", json=[reading])
            assert response.json()["rejected"] == 0, response.text
        assert response.status_code == 201, response.text

    # The stored assessment is that of the last post, at its moment: evaluate the same moment.
    as_of = clock.at
    expected = evaluator.assess(
        case_history(_case(birth, timeline, as_of), default_pack.pack.units, default_pack.pack.plausibility),
        as_of,
        default_pack,
    )
    stored = client.get(f"/v1/patients/{patient_id}/assessment").json()
    result = stored["result"]
    assert (stored["tier"], stored["referral_urgency"]) == (
        expected.tier.value,
        expected.referral.urgency.value if expected.referral else None,
    )
    assert sorted(r["rule_id"] for r in result["reasons"]) == sorted(r.rule_id for r in expected.reasons)
    assert sorted((t["kind"], t["due"]) for t in result["tasks"]) == sorted(
        (t.kind.value, t.due.isoformat()) for t in expected.tasks
    )

    # The open tasks: a recheck is open exactly when evaluate calls for one, due when it says.
    tasks = _open_tasks(client, patient_id)
    called = {t.kind.value: t for t in expected.tasks}
    recheck = tasks.get(("bp_recheck", ""))
    if "bp_recheck" in called:
        assert recheck is not None
        assert datetime.fromisoformat(recheck["due_at"]) == called["bp_recheck"].due
    else:
        assert recheck is None
    # Every task evaluate calls for is open (or the need it meets is open under a referral task).
    for kind in ("emergency_referral", "urgent_referral", "routine_referral", "follow_up_visit"):
        if kind in called:
            assert (kind, "") in tasks, (kind, sorted(tasks))

    # A replay later on sees what evaluate sees at that moment.
    moment = as_of + timedelta(minutes=later)
    clock.at = moment
    replayed = client.post(
        f"/v1/patients/{patient_id}/assessment:preview", params={"as_of": moment.isoformat()}
    ).json()
    again = evaluator.assess(
        case_history(_case(birth, timeline, moment), default_pack.pack.units, default_pack.pack.plausibility),
        moment,
        default_pack,
    )
    assert (replayed["tier"], sorted(t["kind"] for t in replayed["tasks"])) == (
        again.tier.value,
        sorted(t.kind.value for t in again.tasks),
    )
