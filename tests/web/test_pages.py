"""The workbench's pages without JavaScript: what they show, to whom, in which language."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from api.web.common import build_state
from api.web.i18n import Translator
from pathway.clinical.clock import CLINIC_TZ
from pathway.store.tables import Patient
from pathway.store.work_tables import CareTask, PatientFlag
from tests.api.conftest import SettableClock
from tests.web.conftest import sign_in
from tests.web.world import (
    WANG_BP_CLINIC,
    WANG_BP_HOME,
    WANG_GLUCOSE,
    WANG_GLUCOSE_HYPO,
    WANG_LDL,
    World,
)


def _today(world: World) -> str:
    return f"/workbench/teams/{world.team_a}/today"


def _task_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<li class="item [^"]*" id="task-(\d+)"', html)]


def _routine_task_ids(html: str) -> list[int]:
    """The listed tasks that may be snoozed and close as unreachable (priority 3 and below)."""
    found = re.findall(r'<li class="item [^"]*" id="task-(\d+)"[^>]* data-priority="(\d+)"', html)
    return [int(i) for i, priority in found if int(priority) >= 3]


def test_a_page_without_a_session_sends_the_browser_to_the_sign_in_form(
    client: TestClient, world: World
) -> None:
    answer = client.get(_today(world), follow_redirects=False)
    assert answer.status_code == 303
    assert (
        answer.headers["location"] == f"/workbench/login?next=%2Fworkbench%2Fteams%2F{world.team_a}%2Ftoday"
    )


def test_signing_in_sets_a_signed_httponly_cookie_without_the_key(client: TestClient, world: World) -> None:
    form = client.get("/workbench/login")
    token = re.search(r'name="login_token" value="([^"]+)"', form.text)
    assert token is not None
    key = world.keys["team-a"]
    answer = client.post(
        "/workbench/login", data={"api_key": key, "login_token": token.group(1)}, follow_redirects=False
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == _today(world)
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("pw_session="))
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/workbench" in cookie
    assert "Secure" not in cookie  # PATHWAY_WEB_COOKIE_SECURE is off by default
    value = cookie.split(";")[0].removeprefix("pw_session=")
    secret = key.removeprefix("pw_").partition("_")[2]
    assert secret not in value
    assert key not in value


def test_a_wrong_key_a_gateway_key_and_a_stale_form_are_refused(client: TestClient, world: World) -> None:
    def attempt(key: str, token: str | None = None) -> Any:
        form = client.get("/workbench/login")
        found = re.search(r'name="login_token" value="([^"]+)"', form.text)
        assert found is not None
        data = {"api_key": key, "login_token": token if token is not None else found.group(1)}
        return client.post("/workbench/login", data=data, follow_redirects=False)

    wrong = attempt(world.keys["team-a"][:-4] + "xxxx")
    assert wrong.status_code == 401
    assert "密钥无效或已停用" in wrong.text
    gateway = attempt(world.keys["gateway"])
    assert gateway.status_code == 403
    stale = attempt(world.keys["team-a"], token="forged")
    assert stale.status_code == 400
    assert "pw_session" not in client.cookies


def test_a_forged_or_expired_session_is_not_a_session(
    client: TestClient, world: World, clock: SettableClock
) -> None:
    sign_in(client, world.keys["team-a"])
    real = client.cookies["pw_session"]
    browser = TestClient(client.app)

    def status(cookie: str) -> int:
        return browser.get(
            _today(world), headers={"Cookie": f"pw_session={cookie}"}, follow_redirects=False
        ).status_code

    assert status(real) == 200
    assert status(real[:-2] + ("AA" if not real.endswith("AA") else "BB")) == 303
    assert status("garbage") == 303
    assert status("x" * 5000) == 303
    clock.at += timedelta(hours=13)  # past the 12-hour session
    assert status(real) == 303


def test_a_revoked_key_ends_its_sessions(client: TestClient, app: FastAPI, world: World) -> None:
    from pathway.access import permissions

    sign_in(client, world.keys["team-a"])
    prefix = world.keys["team-a"].removeprefix("pw_").partition("_")[0]
    with Session(app.state.engine) as session:
        permissions.revoke_key(session, prefix, app.state.clock.now())
        session.commit()
    assert client.get(_today(world), follow_redirects=False).status_code == 303


def test_todays_list_puts_each_patients_items_on_one_card_most_urgent_first(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.keys["team-a"])
    page = client.get(_today(world))
    assert page.status_code == 200
    html = page.text
    cards = re.findall(
        r'<li class="group patient-card [^"]*" data-patient="(\d+)"[^>]* data-priority="(\d+)"', html
    )
    priorities = [int(p) for _, p in cards]
    assert priorities == sorted(priorities)
    assert priorities
    assert len({patient for patient, _ in cards}) == len(cards)  # one card per patient
    for name in ("王建国", "李秀英", "张伟"):
        assert name in html
    assert "赵敏" not in html  # team B's patient
    total = int(re.search(r'data-total="(\d+)"', html).group(1))  # type: ignore[union-attr]
    assert total == len(_task_ids(html))
    assert 'class="chip tier-' in html
    assert "今日任务" in html
    assert 'action="/workbench/tasks/' in html  # the forms work without a script


def test_another_teams_list_and_patient_are_refused_with_nothing_of_theirs(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.keys["team-a"])
    for path in (
        f"/workbench/teams/{world.team_b}/today",
        f"/workbench/teams/{world.team_b}/dashboard",
        f"/workbench/teams/{world.team_b}/contact",
        f"/workbench/teams/{world.team_b}/patients",
        f"/workbench/patients/{world.patients['B-001']}",
    ):
        answer = client.get(path)
        assert answer.status_code == 404, path  # as if it did not exist
        assert "赵敏" not in answer.text
        assert "jimo-02" not in answer.text
        assert "B-001" not in answer.text


def test_unknown_records_are_404_pages(client: TestClient, world: World) -> None:
    sign_in(client, world.keys["admin"])
    assert client.get("/workbench/patients/999999").status_code == 404
    assert client.get("/workbench/teams/999/today").status_code == 404
    assert client.get("/workbench/patients/abc").status_code == 404
    assert client.get(f"{_today(world)}?date=tomorrow").status_code == 422


def test_admin_and_ehr_keys_pick_any_team(client: TestClient, world: World) -> None:
    sign_in(client, world.keys["ehr"])
    teams = client.get("/workbench/teams")
    assert "即墨 家庭医生团队 1" in teams.text
    assert "即墨 家庭医生团队 2" in teams.text
    assert "赵敏" in client.get(f"/workbench/teams/{world.team_b}/today").text


def test_the_page_is_chinese_by_default_and_english_on_request(client: TestClient, world: World) -> None:
    sign_in(client, world.keys["team-a"])
    chinese = client.get(_today(world))
    assert '<html lang="zh-CN">' in chinese.text
    assert "今日任务" in chinese.text
    english = client.get(_today(world) + "?lang=en")
    assert '<html lang="en">' in english.text
    assert "Today&#39;s list" in english.text
    assert "今日任务" not in english.text
    assert "pw_lang=en" in english.headers["set-cookie"]
    assert "Today&#39;s list" in client.get(_today(world)).text  # remembered
    assert "今日任务" in client.get(_today(world) + "?lang=zh").text


def test_recording_an_outcome_with_a_plain_form_removes_the_item(
    app: FastAPI, client: TestClient, world: World
) -> None:
    csrf = sign_in(client, world.keys["team-a"])
    before = _task_ids(client.get(_today(world)).text)
    task_id = _routine_task_ids(client.get(_today(world)).text)[0]
    answer = client.post(
        f"/workbench/tasks/{task_id}/outcome",
        data={"csrf": csrf, "outcome": "unreachable", "note": "电话三次未接通", "next": _today(world)},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == _today(world) + "?notice=outcome"
    after = client.get(answer.headers["location"])
    assert "已记录结果" in after.text
    assert _task_ids(after.text) == [t for t in before if t != task_id]
    with Session(app.state.engine) as session:
        task = session.exec(select(CareTask).where(CareTask.id == task_id)).one()
        assert (task.status, task.outcome, task.note) == ("unreachable", "unreachable", "电话三次未接通")


def test_a_change_without_the_sessions_csrf_token_is_refused(
    app: FastAPI, client: TestClient, world: World
) -> None:
    sign_in(client, world.keys["team-a"])
    task_id = _task_ids(client.get(_today(world)).text)[0]
    for token in ("", "not-the-token", "tökén-中文"):  # non-ASCII: refused, not a 500
        answer = client.post(f"/workbench/tasks/{task_id}/outcome", data={"csrf": token, "outcome": "done"})
        assert answer.status_code == 403
    with Session(app.state.engine) as session:
        assert session.exec(select(CareTask.status).where(CareTask.id == task_id)).one() == "open"


def test_the_script_gets_json_and_errors_name_their_code(client: TestClient, world: World) -> None:
    csrf = sign_in(client, world.keys["team-a"])
    task_id = _routine_task_ids(client.get(_today(world)).text)[0]
    headers = {"Accept": "application/json", "X-CSRF-Token": csrf}
    too_long = client.post(
        f"/workbench/tasks/{task_id}/snooze",
        data={"until": "2026-04-30T08:00", "reason": "外出探亲"},
        headers=headers,
    )
    assert too_long.status_code == 422
    assert too_long.json()["code"] == "snooze-too-long"
    reassigned = client.post(
        f"/workbench/tasks/{task_id}/reassign", data={"member": "王健康管理师"}, headers=headers
    )
    answer = reassigned.json()
    assert {k: answer[k] for k in ("ok", "task_id", "status", "message", "assignee")} == {
        "ok": True,
        "task_id": task_id,
        "status": "open",
        "message": "已转派。",
        "assignee": "王健康管理师",
    }
    assert task_id in answer["patient_open_tasks"]
    snoozed = client.post(
        f"/workbench/tasks/{task_id}/snooze",
        data={"until": "2026-03-05T08:00", "reason": "外出探亲"},
        headers=headers,
    )
    assert snoozed.json()["ok"] is True
    assert task_id not in _task_ids(client.get(_today(world)).text)
    again = client.post(f"/workbench/tasks/{task_id}/outcome", data={"outcome": "done"}, headers=headers)
    assert again.json()["ok"] is True
    closed = client.post(f"/workbench/tasks/{task_id}/outcome", data={"outcome": "done"}, headers=headers)
    assert (closed.status_code, closed.json()["code"]) == (409, "task-closed")


def test_a_plain_form_error_comes_back_as_a_notice(client: TestClient, world: World) -> None:
    csrf = sign_in(client, world.keys["team-a"])
    task_id = _routine_task_ids(client.get(_today(world)).text)[0]
    answer = client.post(
        f"/workbench/tasks/{task_id}/snooze",
        data={"csrf": csrf, "until": "2026-06-01T08:00", "reason": "x", "next": _today(world)},
        follow_redirects=False,
    )
    assert answer.headers["location"] == _today(world) + "?error=snooze-too-long"
    assert "暂缓时间超过规则包允许的上限" in client.get(answer.headers["location"]).text
    evil = client.post(
        f"/workbench/tasks/{task_id}/reassign",
        data={"csrf": csrf, "member": "李医生", "next": "https://evil.example/"},
        follow_redirects=False,
    )
    assert evil.headers["location"].startswith("/workbench")


def test_another_teams_task_cannot_be_changed(client: TestClient, app: FastAPI, world: World) -> None:
    with Session(app.state.engine) as session:
        theirs = session.exec(
            select(CareTask.id).where(
                CareTask.patient_id == world.patients["B-001"], CareTask.status == "open"
            )
        ).first()
    assert theirs is not None
    csrf = sign_in(client, world.keys["team-a"])
    answer = client.post(f"/workbench/tasks/{theirs}/outcome", data={"csrf": csrf, "outcome": "done"})
    assert answer.status_code == 404  # as if it did not exist
    assert "赵敏" not in answer.text


def test_the_patient_page_shows_the_tier_reasons_referral_plan_and_charts(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.keys["team-a"])
    page = client.get(f"/workbench/patients/{world.patients['A-001']}")
    assert page.status_code == 200
    html = page.text
    assert "王建国" in html
    assert re.search(r'class="chip big tier-(red|yellow|blue)"', html)
    assert "sangao-cn 2020.4" in html
    assert re.search(r'data-rule="[a-z_.]+"', html)
    assert "依据" in html  # each reason's source guideline
    assert "年度照护计划" in html
    assert 'data-section="referral"' in html

    def points(chart: str) -> int:
        found = re.search(rf'data-chart="{chart}" data-points="(\d+)"', html)
        assert found is not None, chart
        return int(found.group(1))

    assert points("bp") == WANG_BP_CLINIC + WANG_BP_HOME
    assert html.count('<circle class="point sbp clinic"') == WANG_BP_CLINIC
    assert html.count('<circle class="point sbp home"') == WANG_BP_HOME
    assert html.count('<circle class="point dbp ') == WANG_BP_CLINIC + WANG_BP_HOME
    assert points("glucose") == WANG_GLUCOSE
    assert html.count('data-band="hypo"') == WANG_GLUCOSE_HYPO
    assert points("ldl") == WANG_LDL
    assert html.count('<rect class="tier-span') == points("tiers") >= 1
    assert 'class="band band-target-sbp"' in html  # his target band, shaded
    assert 'class="band band-hypo"' in html
    assert 'class="band band-hyper"' in html


def test_a_patient_flagged_for_no_contact_shows_the_flags_and_the_last_contact_in_both_languages(
    client: TestClient, app: FastAPI, world: World
) -> None:
    sign_in(client, world.keys["team-a"])
    url = f"/workbench/patients/{world.patients['A-001']}"
    assert 'data-section="contact-flags"' not in client.get(url).text
    # Flags whose recorded last contact is older than the patient's visits: seen since, not shown.
    seen_since = datetime(2025, 2, 20, 7, 30, tzinfo=CLINIC_TZ)
    with Session(app.state.engine) as session:
        for flag in ("missed_3m", "lost_to_follow_up"):
            raised = datetime(2026, 3, 3, 6, tzinfo=CLINIC_TZ)
            session.add(
                PatientFlag(
                    patient_id=world.patients["A-001"],
                    flag=flag,
                    business_date=date(2026, 3, 3),
                    raised_at=raised,
                    last_contact_at=seen_since,
                )
            )
        session.commit()
    assert 'data-section="contact-flags"' not in client.get(url).text
    last_contact: datetime = app.state.clock.now()  # nothing of the patient's is later
    with Session(app.state.engine) as session:
        for row in session.exec(select(PatientFlag)).all():
            row.last_contact_at = last_contact
            session.add(row)
        session.commit()
    shown = last_contact.astimezone(CLINIC_TZ).date().isoformat()
    chinese = client.get(url).text
    assert 'data-flag="missed_3m">3个月未随访<' in chinese
    assert 'data-flag="lost_to_follow_up">失访<' in chinese
    assert f"最后联系: {shown}" in chinese
    english = client.get(url + "?lang=en").text
    assert "No contact for 3 months" in english
    assert "Lost to follow-up" in english
    assert f"last contact: {shown}" in english


def test_the_teams_patients_without_contact_are_listed_lost_first_in_both_languages(
    client: TestClient, app: FastAPI, world: World
) -> None:
    sign_in(client, world.keys["team-a"])
    url = f"/workbench/teams/{world.team_a}/contact"
    assert f'href="{url}"' in client.get(_today(world)).text  # a tab beside today's list
    assert "data-empty" in client.get(url).text
    now: datetime = app.state.clock.now()  # nothing of the patients' is later: not seen since
    flags = {"A-001": ("missed_3m",), "A-002": ("missed_3m", "lost_to_follow_up")}
    with Session(app.state.engine) as session:
        for name, kinds in flags.items():
            for flag in kinds:
                session.add(
                    PatientFlag(
                        patient_id=world.patients[name],
                        flag=flag,
                        business_date=now.astimezone(CLINIC_TZ).date(),
                        raised_at=now,
                        last_contact_at=now,
                    )
                )
        session.commit()
    html = client.get(url).text
    listed = re.findall(r'data-patient="(\d+)" data-flag="([a-z_0-9]+)"', html)
    assert listed == [
        (str(world.patients["A-002"]), "lost_to_follow_up"),  # once, under the worse flag
        (str(world.patients["A-001"]), "missed_3m"),
    ]
    assert 'data-total="2"' in html
    assert "失访" in html
    assert "3个月未随访" in html
    only = client.get(url, params={"flag": "missed_3m"}).text
    assert re.findall(r'data-patient="(\d+)"', only) == [str(world.patients["A-001"])]
    english = client.get(url, params={"lang": "en"}).text
    assert "Lost to follow-up" in english
    assert "days without contact" in english
    assert client.get(url, params={"flag": "overdue"}).status_code == 422


def test_a_paged_list_links_both_ways_and_keeps_its_filters() -> None:
    pager = build_state().templates.get_template("_pager.html").module.pager  # type: ignore[attr-defined]
    html = str(pager(2, 3, {"date": "", "role": "gp", "member": "李 医生&"}, Translator("en")))
    assert 'href="?date=&amp;role=gp&amp;member=%E6%9D%8E+%E5%8C%BB%E7%94%9F%26&amp;page=1">Previous' in html
    assert '&amp;page=3">Next' in html
    assert "Page 2 of 3" in html
    first = str(pager(1, 3, {"flag": "missed_3m"}, Translator("zh")))
    assert 'href="?flag=missed_3m&amp;page=2">下一页' in first
    assert "上一页" not in first
    assert str(pager(1, 1, {}, Translator("zh"))).strip() == ""  # one page: no pager


def test_the_charts_window_follows_the_months_asked(client: TestClient, world: World) -> None:
    sign_in(client, world.keys["team-a"])
    html = client.get(f"/workbench/patients/{world.patients['A-001']}?months=3").text
    # 3 months back: the last visit and the home readings, not the visits of 100 days ago and before.
    assert re.search(r'data-chart="bp" data-points="(\d+)"', html).group(1) == str(1 + WANG_BP_HOME)  # type: ignore[union-attr]


def test_pages_carry_no_store_and_a_strict_content_security_policy(client: TestClient, world: World) -> None:
    sign_in(client, world.keys["team-a"])
    page = client.get(_today(world))
    assert page.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "<script>" not in page.text  # no inline script: the CSP would block it
    assert " style=" not in page.text
    assert page.headers["server-timing"].startswith("app;dur=")


def test_assets_are_served_locally(client: TestClient) -> None:
    css = client.get("/workbench/static/workbench.css")
    js = client.get("/workbench/static/workbench.js")
    assert css.status_code == js.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert "javascript" in js.headers["content-type"]
    html = TestClient(client.app).get("/workbench/login").text
    assert not re.search(r'(src|href)="(https?:)?//', html)


def test_the_workbench_is_not_part_of_the_api_document(app: FastAPI) -> None:
    assert not [path for path in app.openapi()["paths"] if path.startswith("/workbench")]


def test_signing_out_clears_the_session(client: TestClient, world: World) -> None:
    csrf = sign_in(client, world.keys["team-a"])
    answer = client.post("/workbench/logout", data={"csrf": csrf}, follow_redirects=False)
    assert answer.headers["location"] == "/workbench/login?notice=logged_out"
    assert client.get(_today(world), follow_redirects=False).status_code == 303


def test_a_patient_who_moved_away_has_every_task_closed_and_the_page_is_told(
    client: TestClient, world: World
) -> None:
    csrf = sign_in(client, world.keys["team-a"])
    html = client.get(_today(world)).text
    mine = re.findall(rf'id="task-(\d+)" data-task="\d+" data-patient="{world.patients["A-001"]}"', html)
    assert mine
    answer = client.post(
        f"/workbench/tasks/{mine[0]}/outcome",
        data={"outcome": "moved"},
        headers={"Accept": "application/json", "X-CSRF-Token": csrf},
    )
    assert answer.json()["patient_open_tasks"] == []
    assert f'data-patient="{world.patients["A-001"]}"' not in client.get(_today(world)).text


def test_a_stale_form_token_says_so(client: TestClient, world: World) -> None:
    sign_in(client, world.keys["team-a"])
    task_id = _task_ids(client.get(_today(world)).text)[0]
    answer = client.post(f"/workbench/tasks/{task_id}/outcome", data={"csrf": "old", "outcome": "done"})
    assert answer.status_code == 403
    assert "页面已过期" in answer.text


def test_the_teams_patients_are_listed_and_found_by_name_id_or_phone_in_both_languages(
    client: TestClient, app: FastAPI, world: World
) -> None:
    sign_in(client, world.keys["team-a"])
    url = f"/workbench/teams/{world.team_a}/patients"
    assert f'href="{url}"' in client.get(_today(world)).text  # a tab beside today's list
    with Session(app.state.engine) as session:
        for external_id, phone in (("A-001", "138-0013-8000"), ("B-001", "13800138000")):
            patient = session.get(Patient, world.patients[external_id])
            assert patient is not None
            patient.phone = phone
            session.add(patient)
        session.commit()

    def listed(params: dict[str, str]) -> list[str]:
        answer = client.get(url, params=params)
        assert answer.status_code == 200, answer.text
        return re.findall(r'<li class="item[^"]*" data-patient="(\d+)"', answer.text)

    team_a = [str(world.patients[p]) for p in ("A-001", "A-002", "A-003", "A-004")]
    assert listed({}) == team_a  # the team's patients, not team B's
    html = client.get(url).text
    assert 'data-total="4"' in html
    assert 'class="chip tier-' in html
    assert "王建国" in html
    assert "138-0013-8000" in html
    assert "赵敏" not in html
    assert listed({"q": "王"}) == [str(world.patients["A-001"])]
    assert listed({"q": "a-002"}) == [str(world.patients["A-002"])]
    assert listed({"q": "13800138000"}) == [str(world.patients["A-001"])]  # not team B's 赵敏
    assert listed({"q": "赵敏"}) == []
    found = client.get(url, params={"q": "王"}).text
    assert 'value="王"' in found  # the box keeps the query
    assert "找到 1 人" in found
    assert "没有找到" in client.get(url, params={"q": "赵敏"}).text
    english = client.get(url, params={"q": "王", "lang": "en"}).text
    assert "1 found" in english
    assert "Name, ID or phone" in english
    patient_page = client.get(f"/workbench/patients/{world.patients['A-001']}").text
    assert "138-0013-8000" in patient_page
    refused = client.get(f"/workbench/teams/{world.team_b}/patients", params={"q": "赵"})
    assert refused.status_code == 404  # as for a team that does not exist
    assert "赵敏" not in refused.text
