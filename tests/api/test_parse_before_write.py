"""A FHIR Observation or Bundle is parsed and mapped before its request opens a session: no database
connection is held and, on SQLite, the one writer's turn (``app.state.write_lock``) is not taken while
a large Bundle parses, so the other requests are not held behind it."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from pathway.ingest import fhir
from tests.api.conftest import register_patient


class Held:
    """What a request held each time an Observation was parsed: the write lock, open connections."""

    def __init__(self, client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
        app: Any = client.app
        self.app = app
        if app.state.write_lock is None:
            pytest.skip("only SQLite has one writer: PostgreSQL requests never wait on a process lock")
        self.connections = 0
        self.seen: list[tuple[bool, int]] = []
        engine = app.state.engine
        event.listen(engine, "checkout", self._checkout)
        event.listen(engine, "checkin", self._checkin)
        parse = fhir.parse_observation

        def watched(data: Any, field: str = "Observation") -> Any:
            lock = self.app.state.write_lock
            self.seen.append((lock is not None and lock.locked(), self.connections))
            return parse(data, field)

        monkeypatch.setattr(fhir, "parse_observation", watched)

    def _checkout(self, *_: Any) -> None:
        self.connections += 1

    def _checkin(self, *_: Any) -> None:
        self.connections -= 1


def _observation(patient_id: int, ident: str, hour: int = 8) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "identifier": [{"value": ident}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": f"2026-02-28T{hour:02}:00:00+08:00",
        "valueQuantity": {
            "value": 6.1,
            "unit": "mmol/L",
            "system": "http://unitsofmeasure.org",
            "code": "mmol/L",
        },
    }


def test_a_bundle_is_parsed_before_the_request_takes_a_connection_or_the_write_lock(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    patient_id = register_patient(client)
    held = Held(client, monkeypatch)
    entries = [{"resource": _observation(patient_id, f"o{i}", 7 + i)} for i in range(3)]
    answer = client.post("/v1/fhir", json={"resourceType": "Bundle", "type": "batch", "entry": entries})
    assert answer.status_code == 201, answer.text
    assert answer.json()["created"] == 3
    assert held.seen == [(False, 0)] * 3


def test_an_observation_is_parsed_before_the_request_takes_a_connection_or_the_write_lock(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    patient_id = register_patient(client)
    held = Held(client, monkeypatch)
    answer = client.post("/v1/fhir/Observation", json=_observation(patient_id, "o1"))
    assert answer.status_code == 201, answer.text
    assert held.seen == [(False, 0)]
