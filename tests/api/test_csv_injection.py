"""The daily list as CSV cannot carry a formula: a name, id or assignee starting with = + - @, a tab or
a carriage return is written with a leading single quote (OWASP), so a spreadsheet shows it as text;
the numbers we write (priority, days overdue, BP) are never quoted."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from pathway.clinical.clock import CLINIC_TZ
from tests.api.conftest import register_patient, two_teams
from tests.builders import AS_OF

FORMULAS = ['=HYPERLINK("http://x")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "\tx", "\rx"]


@pytest.mark.parametrize("text", FORMULAS, ids=["equals", "plus", "minus", "at", "tab", "cr"])
def test_a_formula_in_a_name_id_or_assignee_is_written_as_text(client: TestClient, text: str) -> None:
    team, _ = two_teams(client)
    patient_id = register_patient(client, text, team_code="jimo-01", name=text)
    visit = {"at": AS_OF.isoformat(), "readings": [{"kind": "bp", "systolic": 186, "diastolic": 112}]}
    assert client.post(f"/v1/patients/{patient_id}/encounters", json=visit).status_code == 201
    task = client.get(f"/v1/patients/{patient_id}/tasks").json()[0]
    assert client.post(f"/v1/tasks/{task['id']}/reassign", json={"member": text}).status_code == 200
    tomorrow = (AS_OF.astimezone(CLINIC_TZ).date() + timedelta(days=1)).isoformat()
    answer = client.get(f"/v1/teams/{team}/tasks?date={tomorrow}", headers={"Accept": "text/csv"})
    assert answer.status_code == 200
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"), newline="")))
    assert rows[1:]
    assert {(r[3], r[4]) for r in rows[1:]} == {(f"'{text}", f"'{text}")}  # patient name, id
    assert f"'{text}" in {r[7] for r in rows[1:]}  # the assignee of the task reassigned
    assert all(r[0].isdigit() and r[1].lstrip("-").isdigit() for r in rows[1:])
    assert "186/112" in {r[10] for r in rows[1:]}
