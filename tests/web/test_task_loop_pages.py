"""The workbench side of the task loop (issue 20): the outcome box has no default."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.web.conftest import sign_in
from tests.web.world import World


def test_the_outcome_box_has_no_default_and_a_form_without_a_choice_is_refused(
    client: TestClient, world: World
) -> None:
    csrf = sign_in(client, world.keys["team-a"])
    today = f"/workbench/teams/{world.team_a}/today"
    html = client.get(today).text
    selects = re.findall(
        r'<select id="outcome-(\d+)" name="outcome" required>\s*<option value="" selected disabled>', html
    )
    assert selects
    assert len(selects) == html.count('name="outcome"')
    assert "selected>完成" not in html
    task_id = int(selects[0])
    answer = client.post(
        f"/workbench/tasks/{task_id}/outcome",
        data={"csrf": csrf, "note": "", "next": today},
        follow_redirects=False,
    )
    assert answer.headers["location"] == today + "?error=invalid-input"
    assert f'id="task-{task_id}"' in client.get(today).text


def test_a_patients_tasks_are_one_card_and_a_recheck_shows_the_crisis_reading(
    client: TestClient, world: World
) -> None:
    patient = world.patients["A-002"]
    reading = {"kind": "bp", "systolic": 186, "diastolic": 112, "source": "home",
               "measured_at": "2026-03-03T08:40:00+08:00"}  # fmt: skip
    posted = client.post(
        f"/v1/patients/{patient}/readings",
        json=[reading],
        headers={"Authorization": f"Bearer {world.keys['ehr']}"},
    )
    assert posted.status_code == 201, posted.text
    sign_in(client, world.keys["team-a"])
    html = client.get(f"/workbench/teams/{world.team_a}/today").text
    cards = re.findall(r'<li class="group patient-card [^"]*" data-patient="(\d+)"', html)
    assert cards.count(str(patient)) == 1
    chunks = html.split('<li class="group patient-card')[1:]
    card = next(c for c in chunks if f'data-patient="{patient}"' in c.split(">", 1)[0])
    assert card.count('<li class="item ') >= 2  # several tasks, one card
    assert "危急读数 186/112 · 2026-03-03 08:40（家庭）" in card
    recheck = next(i for i in card.split('<li class="item ')[1:] if "危急读数" in i)
    assert 'data-priority="2"' in recheck
    assert "act-snooze" not in recheck  # urgent work is never snoozed: no form for it
    assert "act-outcome" in recheck
