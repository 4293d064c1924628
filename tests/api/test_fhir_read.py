"""Issue #17 item 2: the FHIR R4 read-out under /v1/fhir, on both stores.

Every resource it emits validates with the fhir.resources R4B models; searches filter and page;
keys are scoped as on the JSON API (another team's patient is the 404 of an unknown id) and every
read of a patient is audited.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B import get_fhir_model_class
from sqlmodel import Session, select

from pathway.access.permissions import Role
from pathway.store.work_tables import AuditEvent, CareTask
from tests.api.conftest import add_task, new_key, register_patient, two_teams
from tests.builders import AS_OF

FHIR = "/v1/fhir"
BP_PANEL = "http://loinc.org|85354-9"


def _valid(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource, after checking it against its FHIR R4B model (a Bundle's entries each too)."""
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    for entry in resource.get("entry", []):
        get_fhir_model_class(entry["resource"]["resourceType"]).model_validate(entry["resource"])
    return resource


def _get(client: TestClient, path: str, status: int = 200, key: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = client.get(path if path.startswith("http") else FHIR + path, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    return _valid(response.json())


def _resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    assert bundle["type"] == "searchset"
    return [entry["resource"] for entry in bundle["entry"]]


def _red_patient(client: TestClient, external_id: str = "A1", team: str | None = None) -> int:
    """Hypertension and diabetes on one class of antihypertensive: a visit 3 h ago at 158/96 with a
    random glucose of 17.2 mmol/L (red, urgent referral, a medication review)."""
    patient_id = register_patient(
        client, external_id, conditions=["hypertension", "diabetes"], **({"team_code": team} if team else {})
    )
    prescription = {
        "source_prescription_id": "rx-1",
        "classes": ["ccb"],
        "drug": "苯磺酸氨氯地平片",
        "started_on": "2026-01-01",
        "supply_days": 84,
    }
    assert client.post(f"/v1/patients/{patient_id}/prescriptions", json=[prescription]).status_code == 201
    at = (AS_OF - timedelta(hours=3)).isoformat()
    readings = [{"kind": "bp", "systolic": 158, "diastolic": 96}, {"kind": "rpg", "value": 17.2}]
    visit = client.post(f"/v1/patients/{patient_id}/encounters", json={"at": at, "readings": readings})
    assert visit.status_code == 201, visit.text
    return patient_id


def _readings(client: TestClient, patient_id: int, *hours_before: int) -> None:
    """Home BP readings (128/78) that many hours before AS_OF."""
    batch = [
        {
            "kind": "bp",
            "systolic": 128,
            "diastolic": 78,
            "source": "home",
            "measured_at": (AS_OF - timedelta(hours=h)).isoformat(),
        }
        for h in hours_before
    ]
    assert client.post(f"/v1/patients/{patient_id}/readings", json=batch).status_code == 201


def test_every_resource_read_out_validates_and_says_the_pathway(client: TestClient) -> None:
    patient_id = _red_patient(client)
    patient = _get(client, f"/Patient/{patient_id}")
    assert patient["identifier"] == [{"system": "ehr", "value": "A1"}]
    assert (patient["gender"], patient["birthDate"]) == ("male", "1960-01-01")

    observations = _resources(_get(client, f"/Observation?patient={patient_id}"))
    bp = next(o for o in observations if o["code"]["coding"][0]["code"] == "85354-9")
    assert [(c["code"]["coding"][0]["code"], c["valueQuantity"]["value"]) for c in bp["component"]] == [
        ("8480-6", 158),
        ("8462-4", 96),
    ]
    assert bp["component"][0]["valueQuantity"]["code"] == "mm[Hg]"
    glucose = next(o for o in observations if o["code"]["coding"][0]["code"] == "14749-6")
    assert glucose["valueQuantity"]["value"] == 17.2
    assert glucose["valueQuantity"]["unit"] == "mmol/L"

    (risk,) = _resources(_get(client, f"/RiskAssessment?patient={patient_id}"))
    outcomes = [p["outcome"]["coding"][0]["code"] for p in risk["prediction"]]
    assert outcomes == ["red", "center"]
    assert risk["prediction"][0]["qualitativeRisk"]["coding"][0]["code"] == "high"
    assert risk["method"]["coding"][0]["code"] == "sangao-cn"
    basis = {b["identifier"]["value"]: b["identifier"]["system"] for b in risk["basis"]}
    assert {"glu.high", "med.bp.intensify"} <= set(basis)
    version = risk["method"]["coding"][0]["version"]
    assert set(basis.values()) == {f"https://sangao.example/fhir/rule/sangao-cn/{version}"}

    (referral,) = _resources(_get(client, f"/ServiceRequest?patient={patient_id}"))
    assert (referral["status"], referral["priority"]) == ("active", "urgent")
    assert referral["reasonCode"][0]["coding"][0]["code"] == "glu.high"

    (plan,) = _resources(_get(client, f"/CarePlan?patient={patient_id}"))
    assert plan["period"] == {"start": "2026-01-01", "end": "2026-12-31"}
    done = [a["detail"]["scheduledString"] for a in plan["activity"] if a["detail"]["status"] == "completed"]
    assert done == ["2026-03-01"]  # the visit this morning
    assert any(a["detail"]["status"] == "scheduled" for a in plan["activity"])


def test_a_bp_read_out_and_posted_back_is_the_same_reading(client: TestClient) -> None:
    patient_id = _red_patient(client)
    observations = _resources(_get(client, f"/Observation?patient={patient_id}&code={BP_PANEL}"))
    assert len(observations) == 1
    posted = client.post(f"{FHIR}/Observation", json=observations[0])
    assert posted.status_code == 201, posted.text
    assert posted.json()["duplicate"] == 1  # the codes and units the ingest side reads


def test_observations_filter_by_code_and_date_with_prefixes(client: TestClient) -> None:
    patient_id = _red_patient(client)
    _readings(client, patient_id, 30, 50, 80)  # 28 Feb 03:00, 27 Feb 07:00, 25 Feb 01:00 (+08:00)

    def times(query: str) -> list[str]:
        found = _resources(_get(client, f"/Observation?patient={patient_id}&{query}"))
        return [o["effectiveDateTime"] for o in found]

    assert len(times("code=14749-6")) == 1  # the glucose only
    assert len(times(f"code={BP_PANEL}")) == 4
    assert times("code=http://snomed.info/sct|85354-9") == []  # another system's code: no match
    assert times("date=2026-02-27") == ["2026-02-26T23:00:00Z"]  # the clinic's day
    assert times("date=ge2026-02-28&date=lt2026-03-01") == ["2026-02-27T19:00:00Z"]
    assert times("date=gt2026-02-28") == ["2026-02-28T22:00:00Z"] * 2  # this morning's visit
    assert len(times("date=le2026-02-27")) == 2
    assert len(times("date=lt2026-02-27T07:00:00%2B08:00")) == 1
    assert len(times("date=eq2026-02-27T07:00:00%2B08:00")) == 1


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("date=xx2026-01-01", "date"),
        ("date=2026-13-01", "date"),
        ("date=ge2026-01-01T08:00:00", "date"),  # no offset
        ("_count=0", "_count"),
        ("_count=many", "_count"),
        ("_cursor=nonsense", "_cursor"),
        ("subject=Patient/1", "subject"),  # a parameter not served
        ("", "patient"),
        ("patient=Practitioner/1", "patient"),
    ],
)
def test_a_bad_search_is_400_naming_the_parameter(client: TestClient, query: str, parameter: str) -> None:
    patient_id = register_patient(client)
    query = query or "code=85354-9"
    if "patient=" not in query and parameter != "patient":
        query += f"&patient={patient_id}"
    outcome = _get(client, f"/Observation?{query}", status=400)
    (issue,) = outcome["issue"]
    assert issue["details"]["coding"][0]["code"] == "invalid-search-parameter"
    assert issue["expression"] == [parameter]


def test_pages_follow_next_links_in_time_then_id_order(client: TestClient) -> None:
    patient_id = register_patient(client)
    _readings(client, patient_id, 10, 20, 30, 40, 50)
    seen: list[str] = []
    url: str | None = f"/Observation?patient={patient_id}&_count=2"
    pages = 0
    while url is not None:
        bundle = _get(client, url)
        seen += [o["effectiveDateTime"] for o in _resources(bundle)]
        links = {link["relation"]: link["url"] for link in bundle["link"]}
        url = links.get("next")
        pages += 1
    assert pages == 3
    assert seen == sorted(seen)
    assert len(set(seen)) == 5


def test_another_teams_patient_is_the_404_of_an_unknown_one_and_a_gateway_is_refused(
    client: TestClient,
) -> None:
    two_teams(client, "team-a", "team-b")
    patient_id = _red_patient(client, team="team-a")
    app: Any = client.app
    other = new_key(app, Role.TEAM, team="team-b")
    own = new_key(app, Role.TEAM, team="team-a")
    for path in ("Patient/{}", "Observation?patient={}", "RiskAssessment?patient={}", "CarePlan?patient={}"):
        theirs = _get(client, "/" + path.format(patient_id), status=404, key=other)
        unknown = _get(client, "/" + path.format(999_999), status=404, key=other)
        assert theirs["issue"][0]["details"] == unknown["issue"][0]["details"]
        assert theirs["issue"][0]["diagnostics"] == unknown["issue"][0]["diagnostics"].replace(
            "999999", str(patient_id)
        )
        _get(client, "/" + path.format(patient_id), key=own)
    refused = _get(client, f"/Patient/{patient_id}", status=403, key=new_key(app, Role.GATEWAY))
    assert refused["issue"][0]["code"] == "forbidden"
    assert _get(client, "/metadata", status=401, key="pw_nope_nope")["issue"][0]["code"] == "login"


def test_a_team_key_reads_its_own_teams_tasks_only(client: TestClient) -> None:
    team_a, team_b = two_teams(client, "team-a", "team-b")
    ours = register_patient(client, "A1", team_code="team-a")
    theirs = register_patient(client, "B1", team_code="team-b")
    app: Any = client.app
    with Session(app.state.engine) as session:
        add_task(session, ours, team_a, "bp_recheck", due_date=AS_OF.date(), priority=3)
        add_task(session, theirs, team_b, "bp_recheck", due_date=AS_OF.date(), priority=3)
        session.commit()
    own = new_key(app, Role.TEAM, team="team-a")
    tasks = _resources(_get(client, "/Task", key=own))
    assert {t["for"]["reference"] for t in tasks} == {f"Patient/{ours}"}
    assert {t["owner"]["reference"] for t in tasks} == {f"CareTeam/{team_a}"}
    assert len(_resources(_get(client, f"/Task?owner=CareTeam/{team_a}&status=ready", key=own))) == len(tasks)
    assert _resources(_get(client, f"/Task?owner=CareTeam/{team_a}&status=completed", key=own)) == []
    outcome = _get(client, f"/Task?owner=CareTeam/{team_b}", status=404, key=own)
    assert outcome["issue"][0]["expression"] == ["owner"]
    assert len(_resources(_get(client, f"/Task?owner=CareTeam/{team_b}"))) >= 1  # an admin key: any team
    _get(client, "/Task", status=400)  # an admin key names the team

    with Session(app.state.engine) as session:
        task = session.exec(select(CareTask).where(CareTask.patient_id == ours)).first()
        assert task is not None
        task_id = task.id
    done = client.post(f"/v1/tasks/{task_id}/outcome", json={"outcome": "done"})
    assert done.status_code == 200, done.text
    completed = _resources(_get(client, f"/Task?owner=CareTeam/{team_a}&status=completed", key=own))
    assert [(t["id"], t["businessStatus"]["text"]) for t in completed] == [(str(task_id), "done")]


def test_every_read_of_a_patient_is_audited(client: TestClient) -> None:
    patient_id = _red_patient(client)
    for path in ("Patient/{}", "Observation?patient={}", "RiskAssessment?patient={}"):
        _get(client, "/" + path.format(patient_id))
    for path in ("ServiceRequest?patient={}", "CarePlan?patient={}"):
        _get(client, "/" + path.format(patient_id))
    app: Any = client.app
    with Session(app.state.engine) as session:
        actions = session.exec(
            select(AuditEvent.action).where(
                AuditEvent.patient_id == patient_id,
                AuditEvent.action.startswith("fhir."),
            )
        ).all()
    assert sorted(actions) == [
        "fhir.care_plan.read",
        "fhir.observation.read",
        "fhir.patient.read",
        "fhir.risk_assessment.read",
        "fhir.service_request.read",
    ]


def test_the_capability_statement_lists_exactly_what_answers(client: TestClient) -> None:
    team_a, _ = two_teams(client, "team-a", "team-b")
    patient_id = _red_patient(client, team="team-a")
    (rest,) = _get(client, "/metadata")["rest"]
    listed = {r["type"]: r for r in rest["resource"]}
    app: Any = client.app
    routes = {
        path.removeprefix(FHIR)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith(FHIR + "/") and "get" in operations
    }
    expected = {"/metadata"} | {
        f"/{kind}/{{patient_id}}" if i["code"] == "read" else f"/{kind}"
        for kind, resource in listed.items()
        for i in resource["interaction"]
    }
    assert routes == expected  # every GET route listed, and nothing listed that no route serves
    examples = {
        "patient": f"patient={patient_id}",
        "code": f"code={BP_PANEL}",
        "date": "date=ge2026-01-01",
        "owner": f"owner=CareTeam/{team_a}",
        "status": "status=ready",
        "_count": "_count=5",
    }
    for kind, resource in listed.items():
        codes = [i["code"] for i in resource["interaction"]]
        if "read" in codes:
            assert _get(client, f"/{kind}/{patient_id}")["resourceType"] == kind
        if "search-type" in codes:
            names = [p["name"] for p in resource["searchParam"]]
            required = examples["patient"] if "patient" in names else examples["owner"]
            for name in names:
                bundle = _get(client, f"/{kind}?{required}&{examples[name]}")
                assert _resources(bundle), (kind, name)  # each listed parameter answers, with entries
