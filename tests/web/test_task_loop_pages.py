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
