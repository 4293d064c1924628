"""The rule engine failing inside an evaluation: the data is kept, the patient awaits a
reassessment, and a later evaluation completes it. No request fails with a 500 or hangs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from pathway.access.permissions import Role
from pathway.clinical.assessment import Assessment
from pathway.clinical.clock import CLINIC_TZ
from pathway.clinical.history import PatientHistory
from pathway.settings import Settings
from pathway.store.db import migrate
from rules.evaluation import Evaluator
from rules.registry import LoadedPack, PackRegistry
from tests.api.conftest import SettableClock, new_key, register_patient
from tests.builders import AS_OF
from tests.conftest import DIALECTS, database


class FlakyEvaluator(Evaluator):
    """The real evaluator, except while ``broken``: then it raises as a crashed engine would."""

    broken = False

    def assess(
        self,
        history: PatientHistory,
        as_of: datetime,
        pack: LoadedPack | None = None,
        tz: ZoneInfo = CLINIC_TZ,
    ) -> Assessment:
        if self.broken:
            raise RuntimeError("durable_rules: simulated failure inside the engine")
        return super().assess(history, as_of, pack, tz)


@pytest.fixture(params=DIALECTS)
def flaky(request: pytest.FixtureRequest) -> Iterator[tuple[TestClient, FlakyEvaluator]]:
    url = database(request, request.param)
    migrate(url)
    evaluator = FlakyEvaluator(PackRegistry.from_directory())
    app = create_app(Settings(database_url=url), clock=SettableClock(AS_OF), evaluator=evaluator)
    with TestClient(app, headers={"Authorization": f"Bearer {new_key(app, Role.ADMIN)}"}) as client:
        yield client, evaluator
    app.state.engine.dispose()


def _crisis(minutes_ago: int) -> dict[str, Any]:
    at = (AS_OF - timedelta(minutes=minutes_ago)).isoformat()
    return {"kind": "bp", "systolic": 196, "diastolic": 118, "source": "wearable", "measured_at": at}


def test_a_failing_engine_keeps_the_readings_and_a_later_evaluation_completes_it(
    flaky: tuple[TestClient, FlakyEvaluator],
) -> None:
    client, evaluator = flaky
    patient_id = register_patient(client)
    before = client.get(f"/v1/patients/{patient_id}").json()["assessment"]["tier"]

    evaluator.broken = True
    posted = client.post(f"/v1/patients/{patient_id}/readings", json=[_crisis(40), _crisis(20)])
    assert posted.status_code == 201  # stored: a 2xx means durable, evaluated or not
    assert posted.json()["created"] == 2
    assert posted.json()["assessment"] is None
    assert posted.json()["assessment_pending"] is True
    summary = client.get(f"/v1/patients/{patient_id}").json()
    assert summary["assessment_pending"] is True
    assert summary["assessment"]["tier"] == before  # the last good assessment, flagged as behind
    unavailable = client.get(f"/v1/patients/{patient_id}/assessment")
    assert unavailable.status_code == 503
    assert unavailable.json()["code"] == "evaluation-unavailable"
    assert int(unavailable.headers["Retry-After"]) > 0
    symptoms = client.post(
        f"/v1/patients/{patient_id}/symptoms", json=[{"code": "severe_headache", "at": AS_OF.isoformat()}]
    )
    assert symptoms.status_code == 202
    assert symptoms.json() == {"patient_id": patient_id, "assessment_pending": True}

    evaluator.broken = False
    current = client.get(f"/v1/patients/{patient_id}/assessment")
    assert current.status_code == 200
    assert current.json()["tier"] == "red"  # the two wearable crises 20 min apart, and the headache
    assert client.get(f"/v1/patients/{patient_id}").json()["assessment_pending"] is False


def test_a_retried_batch_completes_an_awaited_reassessment(flaky: tuple[TestClient, FlakyEvaluator]) -> None:
    client, evaluator = flaky
    patient_id = register_patient(client)
    batch = [_crisis(40), _crisis(20)]
    evaluator.broken = True
    assert client.post(f"/v1/patients/{patient_id}/readings", json=batch).json()["assessment_pending"] is True

    evaluator.broken = False
    retry = client.post(f"/v1/patients/{patient_id}/readings", json=batch)

    assert retry.json()["duplicate"] == 2  # nothing new stored, yet the awaited reassessment is made
    assert retry.json()["assessment_pending"] is False
    assert retry.json()["assessment"]["tier"] == "red"
    assert client.get(f"/v1/patients/{patient_id}").json()["assessment_pending"] is False
