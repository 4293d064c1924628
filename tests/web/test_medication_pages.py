"""Issue #16 item 4: the patient page's 用药 block and the team's medication forms, on SQLite and
PostgreSQL: the medication in use by group with the days left, an ended or lapsed supply marked (as
the pack's lapse window reads it), a stopped one gone; the visits' adherence and adverse reactions;
forms that store through the API's use-cases, reassess, refuse bad input naming the field (nothing
stored), another team's patient and a missing CSRF token. And 今日任务 shows the §7 task kinds with
the reasons of the rules that called for them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from html import escape
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, col, func, select

from api.main import create_app, pathway_config
from api.web.common import build_state
from api.web.session import WebSettings
from pathway.clinical.medication import Adherence
from pathway.ingest import prescribing, recording
from pathway.ingest.inbound import EncounterIn
from pathway.ingest.medication_in import PrescriptionIn
from pathway.patients import reassessment
from pathway.patients.reassessment import PathwayConfig
from pathway.settings import Settings
from pathway.store.db import migrate
from pathway.store.tables import AssessmentRecord, Encounter, Patient, PrescriptionRecord
from pathway.tasks import issuing
from pathway.teams.daily_tasks import WHAT_TO_DO
from rules.evaluation import Evaluator
from rules.registry import DEFAULT_PACK_ID
from tests.api.conftest import SettableClock
from tests.conftest import DIALECTS, database
from tests.web.conftest import NOW, sign_in
from tests.web.world import World, build_world

TODAY = NOW.date()


class Ward:
    """The app on one store, its world, and the pathway it assesses with."""

    def __init__(self, app: FastAPI, world: World, config: PathwayConfig, clock: SettableClock) -> None:
        self.app, self.world, self.config, self.clock = app, world, config, clock

    def patient_id(self, external_id: str) -> int:
        return self.world.patients[external_id]

    def prescribe(self, external_id: str, *items: PrescriptionIn) -> None:
        with Session(self.app.state.engine) as session:
            patient = session.get(Patient, self.patient_id(external_id))
            assert patient is not None
            results = prescribing.record_prescriptions(
                session, patient, list(items), source_system="ehr", config=self.config, now=self.clock.now()
            )
            assert {r.status for r in results} == {"created"}
            session.commit()

    def visit(self, external_id: str, visit: EncounterIn) -> None:
        with Session(self.app.state.engine) as session:
            patient = session.get(Patient, self.patient_id(external_id))
            assert patient is not None
            recording.record_encounter(
                session, patient, visit, source_system="ehr", config=self.config, now=self.clock.now()
            )
            session.commit()

    def count(self, table: Any, external_id: str) -> int:
        with Session(self.app.state.engine) as session:
            found = session.exec(
                select(func.count())
                .select_from(table)
                .where(table.patient_id == self.patient_id(external_id))
            ).one()
            return int(found)

    def newest_assessment(self, external_id: str) -> AssessmentRecord:
        with Session(self.app.state.engine) as session:
            record = session.exec(
                select(AssessmentRecord)
                .where(AssessmentRecord.patient_id == self.patient_id(external_id))
                .order_by(col(AssessmentRecord.id).desc())
            ).first()
            assert record is not None
            return record

    def current(self, external_id: str) -> list[PrescriptionRecord]:
        with Session(self.app.state.engine) as session:
            statement = select(PrescriptionRecord).where(
                PrescriptionRecord.patient_id == self.patient_id(external_id),
                col(PrescriptionRecord.superseded_at).is_(None),
            )
            return list(session.exec(statement))


@pytest.fixture(params=DIALECTS)
def ward(request: pytest.FixtureRequest, evaluator: Evaluator) -> Iterator[Ward]:
    url = database(request, request.param)
    migrate(url)
    settings = Settings(database_url=url, key_cache_seconds=0)
    clock = SettableClock(NOW)
    app = create_app(settings, clock=clock, evaluator=evaluator)
    app.state.web = build_state(WebSettings(dashboard_wait_seconds=30))
    config = pathway_config(evaluator, settings)
    world = build_world(app.state.engine, config, NOW)
    yield Ward(app, world, config, clock)
    app.state.engine.dispose()


def _rx(source_id: str, atc: str, drug: str, started: date, supply_days: int, **more: Any) -> PrescriptionIn:
    return PrescriptionIn(
        source_prescription_id=source_id,
        atc=atc,
        drug=drug,
        dose="1 片 qd",
        started_on=started,
        supply_days=supply_days,
        **more,
    )


def _row(page: str, drug: str) -> str:
    found = re.search(r"<tr [^>]*data-prescription=[^>]*>(?:(?!</tr>).)*" + re.escape(drug), page, re.S)
    assert found is not None, drug
    return found.group(0)


def _table(page: str, group: str) -> str:
    found = re.search(rf'<table class="plan meds" data-group="{group}">.*?</table>', page, re.S)
    assert found is not None, group
    return found.group(0)


def test_the_page_shows_medication_by_group_with_days_left_ended_and_lapsed_marked_stopped_hidden(
    ward: Ward,
) -> None:
    lapse = ward.config.medication.windows.lapse_days  # type: ignore[union-attr]
    ccb = _rx("rx-ccb", "C08CA01", "苯磺酸氨氯地平片", TODAY - timedelta(days=10), 56)
    metformin = _rx("rx-met", "A10BA02", "盐酸二甲双胍片", TODAY - timedelta(days=70), 60)
    statin = _rx("rx-sta", "C10AA05", "阿托伐他汀钙片", TODAY - timedelta(days=lapse + 60), 28)
    stopped = _rx(
        "rx-arb",
        "C09CA01",
        "氯沙坦钾片",
        TODAY - timedelta(days=100),
        90,
        stopped_on=TODAY - timedelta(days=5),
    )
    ward.prescribe("A-001", ccb, metformin, statin, stopped)
    client = TestClient(ward.app)
    sign_in(client, ward.world.keys["team-a"])
    page = client.get(f"/workbench/patients/{ward.patient_id('A-001')}").text

    ccb_row = _row(_table(page, "antihypertensive"), ccb.drug)
    ccb_left = (ccb.started_on + timedelta(days=ccb.supply_days) - TODAY).days
    assert ccb_left > 0
    assert f'data-state="supplied" data-days-left="{ccb_left}"' in ccb_row
    assert "CCB（地平类）" in ccb_row
    assert (ccb.started_on + timedelta(days=ccb.supply_days)).isoformat() in ccb_row

    metformin_row = _row(_table(page, "glucose_lowering"), metformin.drug)
    ended = (TODAY - (metformin.started_on + timedelta(days=metformin.supply_days))).days
    assert 0 < ended <= lapse
    assert f'data-state="ended" data-days-left="{-ended}"' in metformin_row
    assert f"已断药 {ended} 天" in metformin_row

    statin_row = _row(_table(page, "lipid_lowering"), statin.drug)
    lapsed = (TODAY - (statin.started_on + timedelta(days=statin.supply_days))).days
    assert lapsed > lapse
    assert 'data-state="lapsed"' in statin_row
    assert f"断药 {lapsed} 天，视为未服药" in statin_row

    assert stopped.drug not in page  # stopped five days ago: not in use
    assert ward.count(PrescriptionRecord, "A-001") == 4


def test_the_block_speaks_english_with_lang_en(ward: Ward) -> None:
    ward.prescribe("A-001", _rx("rx-met", "A10BA02", "盐酸二甲双胍片", TODAY - timedelta(days=70), 60))
    client = TestClient(ward.app)
    sign_in(client, ward.world.keys["team-a"])
    page = client.get(f"/workbench/patients/{ward.patient_id('A-001')}?lang=en").text
    row = _row(_table(page, "glucose_lowering"), "盐酸二甲双胍片")
    assert "Metformin" in row
    assert "Supply ended 10 d ago" in row
    assert "Glucose-lowering" in page
    assert "med." not in re.sub(r'data-rule="[^"]*"|<code>[^<]*</code>', "", page)  # no key left untranslated


def test_the_page_lists_the_visits_adherence_and_adverse_reactions_newest_first(ward: Ward) -> None:
    ward.visit(
        "A-001",
        EncounterIn(
            at=NOW - timedelta(days=60),
            adherence=Adherence.REGULAR,
            adverse_reaction=False,
            source_encounter_id="m1",
        ),
    )
    ward.visit(
        "A-001",
        EncounterIn(
            at=NOW - timedelta(days=15),
            medications_reviewed=True,
            adherence=Adherence.INTERMITTENT,
            adverse_reaction=True,
            adverse_reaction_text="干咳",
            source_encounter_id="m2",
        ),
    )
    client = TestClient(ward.app)
    sign_in(client, ward.world.keys["team-a"])
    page = client.get(f"/workbench/patients/{ward.patient_id('A-001')}").text
    table = re.search(r'data-section="medication-answers".*?</table>', page, re.S)
    assert table is not None
    rows = re.findall(
        r'<tr data-encounter="\d+" data-adherence="(\w*)" data-adverse="(\w*)">(.*?)</tr>',
        table.group(0),
        re.S,
    )
    assert [(a, b) for a, b, _ in rows] == [
        ("intermittent", "yes"),
        ("regular", "no"),
    ]  # visits without answers absent
    assert (NOW - timedelta(days=15)).date().isoformat() in rows[0][2]
    assert "间断" in rows[0][2]
    assert "干咳" in rows[0][2]
    assert "已核对" in rows[0][2]
    assert "规律" in rows[1][2]
    assert "无" in rows[1][2]


def _post(client: TestClient, url: str, csrf: str | None, **fields: Any) -> Any:
    data = {k: str(v) for k, v in fields.items()}
    if csrf is not None:
        data["csrf"] = csrf
    return client.post(url, data=data, follow_redirects=False)


def _rules(page: str) -> set[str]:
    return set(re.findall(r'<li class="reason-row [^"]*" data-rule="([^"]+)"', page))


def test_a_visits_adverse_reaction_is_recorded_reassessed_and_its_rule_shown(ward: Ward) -> None:
    client = TestClient(ward.app)
    csrf = sign_in(client, ward.world.keys["team-a"])
    url = f"/workbench/patients/{ward.patient_id('A-001')}"
    assert "med.adverse" not in _rules(client.get(url).text)
    ward.clock.at = NOW + timedelta(minutes=7)
    answer = _post(
        client,
        f"{url}/medication/visit",
        csrf,
        at=(NOW + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M"),
        medications_reviewed="on",
        adherence="regular",
        adverse_reaction="yes",
        adverse_reaction_text="踝部水肿",
        source_encounter_id="workbench-visit-1",
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"].startswith(f"{url}?notice=medication_visit")
    assert ward.newest_assessment("A-001").evaluated_at == ward.clock.at
    page = client.get(answer.headers["location"]).text
    assert "med.adverse" in _rules(page)
    assert "已记录随访用药情况" in page
    assert "踝部水肿" in page
    with Session(ward.app.state.engine) as session:
        visit = session.exec(
            select(Encounter).where(Encounter.source_encounter_id == "workbench-visit-1")
        ).one()
        assert (visit.adherence, visit.adverse_reaction, visit.medications_reviewed) == (
            "regular",
            True,
            True,
        )


def test_a_prescription_added_changed_and_stopped_on_the_workbench(ward: Ward) -> None:
    client = TestClient(ward.app)
    csrf = sign_in(client, ward.world.keys["team-a"])
    url = f"/workbench/patients/{ward.patient_id('A-001')}"
    assert "med.bp.intensify" not in _rules(client.get(url).text)  # the medication is not known yet
    ward.clock.at = NOW + timedelta(minutes=3)
    added = _post(
        client,
        f"{url}/prescriptions",
        csrf,
        classes="ccb",
        atc="",
        drug="硝苯地平控释片",
        dose="30 mg qd",
        supply_days=28,
        started_on=TODAY.isoformat(),
        source_prescription_id="workbench-rx-1",
    )
    assert added.status_code == 303, added.text
    assert ward.newest_assessment("A-001").evaluated_at == ward.clock.at
    page = client.get(added.headers["location"]).text
    assert "med.bp.intensify" in _rules(page)  # known now: one class, BP uncontrolled
    assert 'data-state="supplied" data-days-left="28"' in _row(
        _table(page, "antihypertensive"), "硝苯地平控释片"
    )
    [rx] = ward.current("A-001")
    assert (rx.classes, rx.source_prescription_id) == (["ccb"], "workbench-rx-1")

    ward.clock.at = NOW + timedelta(minutes=6)
    changed = _post(
        client,
        f"{url}/prescriptions/{rx.id}",
        csrf,
        classes="",
        atc="C09DA01",
        drug="氯沙坦钾氢氯噻嗪片",
        dose="1 片 qd",
        supply_days=56,
        started_on=TODAY.isoformat(),
    )
    assert changed.status_code == 303, changed.text
    [new] = ward.current("A-001")
    assert new.id != rx.id
    assert new.source_prescription_id == "workbench-rx-1"
    assert (new.classes, new.supply_days) == (["arb", "thiazide"], 56)
    page = client.get(changed.headers["location"]).text
    assert "硝苯地平控释片" not in page
    assert "ARB（沙坦类） + 噻嗪类利尿剂" in _row(_table(page, "antihypertensive"), "氯沙坦钾氢氯噻嗪片")

    ward.clock.at = NOW + timedelta(minutes=9)
    stopped = _post(client, f"{url}/prescriptions/{new.id}/stop", csrf, stopped_on=TODAY.isoformat())
    assert stopped.status_code == 303, stopped.text
    assert ward.newest_assessment("A-001").evaluated_at == ward.clock.at
    page = client.get(stopped.headers["location"]).text
    assert "氯沙坦钾氢氯噻嗪片" not in page
    assert "已停药" in page
    [last] = ward.current("A-001")
    assert last.stopped_on == TODAY


@pytest.mark.parametrize(
    ("path", "fields", "field"),
    [
        ("prescriptions", {"classes": "ccb", "drug": "硝苯地平控释片", "supply_days": 0}, "supply_days"),
        ("prescriptions", {"classes": "ccb", "drug": "硝苯地平控释片", "supply_days": "abc"}, "supply_days"),
        ("prescriptions", {"atc": "Z99", "drug": "硝苯地平控释片", "supply_days": 28}, "atc"),
        ("prescriptions", {"drug": "硝苯地平控释片", "supply_days": 28}, "classes"),
        ("prescriptions", {"classes": "aspirin", "drug": "硝苯地平控释片", "supply_days": 28}, "classes.0"),
        (
            "prescriptions",
            {"classes": "ccb", "drug": "硝苯地平控释片", "supply_days": 28, "started_on": "2026-03-04"},
            "started_on",
        ),
        (
            "medication/visit",
            {"adverse_reaction": "no", "adverse_reaction_text": "皮疹"},
            "adverse_reaction_text",
        ),
        ("medication/visit", {"adherence": "sometimes"}, "adherence"),
        ("medication/visit", {}, "adherence"),
        ("medication/visit", {"adherence": "regular", "at": "yesterday"}, "at"),
    ],
)
def test_a_bad_form_is_shown_again_with_the_fields_error_and_nothing_stored(
    ward: Ward, path: str, fields: dict[str, Any], field: str
) -> None:
    client = TestClient(ward.app)
    csrf = sign_in(client, ward.world.keys["team-a"])
    url = f"/workbench/patients/{ward.patient_id('A-001')}"
    defaults = (
        {"started_on": TODAY.isoformat()}
        if path == "prescriptions"
        else {"at": NOW.strftime("%Y-%m-%dT%H:%M")}
    )
    encounters = ward.count(Encounter, "A-001")
    assessments = ward.count(AssessmentRecord, "A-001")
    answer = _post(client, f"{url}/{path}", csrf, **{**defaults, **fields})
    assert answer.status_code == 422, answer.text
    assert f'data-field-error="{field}"' in answer.text
    if "drug" in fields:
        assert 'value="硝苯地平控释片"' in answer.text  # what was typed is kept
    assert ward.count(PrescriptionRecord, "A-001") == 0
    assert ward.count(Encounter, "A-001") == encounters
    assert ward.count(AssessmentRecord, "A-001") == assessments


def test_a_stop_before_the_start_is_refused_naming_the_day(ward: Ward) -> None:
    ward.prescribe("A-001", _rx("rx-ccb", "C08CA01", "苯磺酸氨氯地平片", TODAY - timedelta(days=10), 56))
    [rx] = ward.current("A-001")
    client = TestClient(ward.app)
    csrf = sign_in(client, ward.world.keys["team-a"])
    url = f"/workbench/patients/{ward.patient_id('A-001')}/prescriptions/{rx.id}/stop"
    answer = _post(client, url, csrf, stopped_on=(TODAY - timedelta(days=11)).isoformat())
    assert answer.status_code == 422
    assert 'data-field-error="stopped_on"' in answer.text
    assert [r.id for r in ward.current("A-001")] == [rx.id]


def test_changing_a_superseded_version_is_refused_as_a_conflict(ward: Ward) -> None:
    ward.prescribe("A-001", _rx("rx-ccb", "C08CA01", "苯磺酸氨氯地平片", TODAY - timedelta(days=10), 56))
    [old] = ward.current("A-001")
    ward.prescribe("A-001", _rx("rx-new", "C10AA05", "阿托伐他汀钙片", TODAY, 28))
    client = TestClient(ward.app)
    csrf = sign_in(client, ward.world.keys["team-a"])
    url = f"/workbench/patients/{ward.patient_id('A-001')}/prescriptions/{old.id}"
    fields = {
        "atc": "C08CA01",
        "drug": "苯磺酸氨氯地平片",
        "supply_days": 28,
        "started_on": TODAY.isoformat(),
    }
    first = _post(client, url, csrf, **{**fields, "dose": "10 mg qd"})
    assert first.status_code == 303, first.text
    again = _post(client, url, csrf, **{**fields, "dose": "2.5 mg qd"})  # the stale form, resent
    assert again.status_code == 409
    assert "该处方已被更新" in again.text
    assert sorted(r.dose or "" for r in ward.current("A-001")) == ["1 片 qd", "10 mg qd"]


def test_another_teams_patient_and_a_missing_csrf_token_are_refused_and_nothing_stored(ward: Ward) -> None:
    client = TestClient(ward.app)
    csrf = sign_in(client, ward.world.keys["team-b"])
    url = f"/workbench/patients/{ward.patient_id('A-001')}"
    encounters = ward.count(Encounter, "A-001")
    rx = {"classes": "ccb", "drug": "硝苯地平控释片", "supply_days": 28, "started_on": TODAY.isoformat()}
    for path, fields in (
        ("prescriptions", rx),
        ("medication/visit", {"adherence": "none", "at": "2026-03-03T09:00"}),
    ):
        refused = _post(client, f"{url}/{path}", csrf, **fields)
        assert refused.status_code == 404, path  # as if the patient did not exist
        assert "王建国" not in refused.text
        assert "A-001" not in refused.text
    own = TestClient(ward.app)
    sign_in(own, ward.world.keys["team-a"])
    no_token = _post(own, f"{url}/prescriptions", None, **rx)
    assert no_token.status_code == 403
    wrong = _post(own, f"{url}/medication/visit", "not-the-token", adherence="none", at="2026-03-03T09:00")
    assert wrong.status_code == 403
    assert ward.count(PrescriptionRecord, "A-001") == 0
    assert ward.count(Encounter, "A-001") == encounters


def _items(page: str, patient_id: int) -> list[str]:
    card = re.search(
        rf'<li class="group patient-card [^"]*" data-patient="{patient_id}".*?</ol>\s*</li>', page, re.S
    )
    assert card is not None
    return re.findall(r'<li class="item .*?</li>', card.group(0), re.S)


def test_todays_list_shows_the_medication_tasks_with_their_rules_and_reasons(ward: Ward) -> None:
    """medication_review (med.bp.intensify), adherence_support (med.supply.lapsed), statin_start
    (med.statin.indicated) and refill_review (a supply ending soon), each on the list of the day it
    falls due, with what to do, its rule, and the reasons line carrying the rule's message."""
    patient_id = ward.patient_id("A-001")
    ward.prescribe(
        "A-001",
        _rx("rx-ccb", "C08CA01", "苯磺酸氨氯地平片", TODAY - timedelta(days=50), 56),
        _rx("rx-met", "A10BA02", "盐酸二甲双胍片", TODAY - timedelta(days=70), 60),
    )
    rules = ward.app.state.registry.in_force(DEFAULT_PACK_ID, on=None).pack.policy.follow_through
    with Session(ward.app.state.engine) as session:
        patient = session.get(Patient, patient_id)
        assert patient is not None
        reassessment.reassess(session, patient, ward.config, NOW)
        session.commit()
    messages = {r["rule_id"]: r["message"] for r in ward.newest_assessment("A-001").result["reasons"]}
    client = TestClient(ward.app)
    sign_in(client, ward.world.keys["team-a"])
    seen: dict[str, str] = {}
    for ahead in range(15):
        day = TODAY + timedelta(days=ahead)
        with Session(ward.app.state.engine) as session:
            issuing.issue_due(session, NOW, rules, business_date=day)
            session.commit()
        page = client.get(f"/workbench/teams/{ward.world.team_a}/today?date={day.isoformat()}").text
        if f'data-patient="{patient_id}"' not in page:
            continue
        line = re.search(rf'data-patient="{patient_id}".*?<p class="reason">(.*?)</p>', page, re.S)
        assert line is not None
        for item in _items(page, patient_id):
            rule = re.search(r'<code class="rule"[^>]*>([^<]+)</code>', item)
            todo = re.search(r'<span class="todo">([^<]+)</span>', item)
            assert rule is not None
            assert todo is not None
            seen.setdefault(rule.group(1), todo.group(1))
            if rule.group(1) in messages:
                assert escape(messages[rule.group(1)]) in line.group(1)
    assert seen["med.bp.intensify"] == WHAT_TO_DO["medication_review"][0]
    assert seen["med.supply.lapsed"] == WHAT_TO_DO["adherence_support"][0]
    assert seen["med.statin.indicated"] == WHAT_TO_DO["statin_start"][0]
    refill = [todo for todo in seen.values() if todo.startswith(WHAT_TO_DO["refill_review"][0])]
    assert refill, seen
