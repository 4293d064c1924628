"""The impact of a pack change, from stored histories, on both stores: the same pack changes nobody;
an edited pack changes exactly the patients whose histories it should; nothing is stored; worker
processes give the same report; an invalid pack is refused; the API route answers the same."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session, SQLModel

from api.editions import impact_editions
from pathway.cli import main
from pathway.cli.impact import _editions
from pathway.clinical.clock import CLINIC_TZ
from pathway.clinical.errors import CandidatePackInvalid
from pathway.editions.impact import Outcome, outcome_of
from pathway.editions.replay import measure_impact, measure_impact_in_workers
from rules.registry import PACKS_DIR, PackRegistry, parse_pack
from tests.api.conftest import register_patient, two_teams
from tests.builders import AS_OF

DEFAULT_YAML = (PACKS_DIR / "sangao-cn" / "2020.yaml").read_text(encoding="utf-8")
UNCONTROLLED = "    then:\n      follow_up_days: 14\n      message: {zh: 血压未达标"


def edited_pack() -> str:
    """The default pack with bp.uncontrolled's follow-up 14 → 10 days and data.gap's BP gap 90 → 30."""
    assert UNCONTROLLED in DEFAULT_YAML
    text = DEFAULT_YAML.replace(UNCONTROLLED, UNCONTROLLED.replace("14", "10"))
    text = text.replace("{fact: days_since_last_bp, gt: 90}", "{fact: days_since_last_bp, gt: 30}", 1)
    return text.replace('version: "2020.4"', 'version: "2020.5-impact"', 1)


def _visit(client: TestClient, patient_id: int, days_ago: int, systolic: int, diastolic: int) -> None:
    at = AS_OF - timedelta(days=days_ago)
    body = {"at": at.isoformat(), "readings": [{"kind": "bp", "systolic": systolic, "diastolic": diastolic}]}
    response = client.post(f"/v1/patients/{patient_id}/encounters", json=body)
    assert response.status_code == 201, response.text


def _county(client: TestClient) -> dict[str, int]:
    """Hypertensive men: above target 10 days ago, at target 10 days ago, at target 45 days ago."""
    two_teams(client)
    plan = {
        "a-high": ("jimo-01", 10, 150, 92),
        "a-ok": ("jimo-01", 10, 120, 76),
        "a-gap": ("jimo-01", 45, 120, 76),
        "b-high": ("jimo-02", 10, 152, 94),
        "b-gap": ("jimo-02", 45, 118, 74),
        "c-ok": (None, 10, 122, 78),
    }
    ids = {}
    for external_id, (team, days_ago, systolic, diastolic) in plan.items():
        extra = {"team_code": team} if team else {}
        ids[external_id] = register_patient(client, external_id, **extra)
        _visit(client, ids[external_id], days_ago, systolic, diastolic)
    return ids


def _row_counts(session: Session) -> dict[str, int]:
    return {
        name: int(session.execute(select(func.count()).select_from(table)).scalar_one())
        for name, table in SQLModel.metadata.tables.items()
    }


def _run(client: TestClient, pack_text: str, **kwargs: Any) -> Any:
    app: Any = client.app
    registry: PackRegistry = app.state.registry
    candidate = parse_pack(pack_text.encode(), Path("candidate.yaml"))
    editions = impact_editions(registry, candidate, None, AS_OF.date(), CLINIC_TZ, app.state.evaluator)
    with Session(app.state.engine) as session:
        before = _row_counts(session)
        report = measure_impact(session, editions, AS_OF, **kwargs)
        assert _row_counts(session) == before  # nothing stored
    return report


def test_the_same_pack_changes_nobody(client: TestClient) -> None:
    _county(client)
    report = _run(client, DEFAULT_YAML)
    overall = report.to_json()["overall"]
    assert overall["patients"] == 6
    assert [overall[k] for k in ("changed", "tier_changed", "level_changed", "referral_changed")] == [0] * 4
    assert overall["follow_up_changed"] == 0
    assert overall["rules_fire_more"] == overall["rules_fire_less"] == []
    assert overall["tasks_gained"] == overall["tasks_lost"] == {}
    assert all(row["delta"] == 0 for row in overall["rules"].values())
    assert report.changes == []
    assert sum(t["patients"] for t in report.to_json()["teams"].values()) == 6


@pytest.mark.parametrize("batch", [2, 500])
def test_an_edited_pack_changes_exactly_the_patients_its_edits_reach(client: TestClient, batch: int) -> None:
    ids = _county(client)
    report = _run(client, edited_pack(), batch=batch)
    changed = {change.external_id: change for change in report.changes}
    assert set(changed) == {"a-high", "b-high", "a-gap", "b-gap"}
    for name in ("a-high", "b-high"):  # above target: a shorter follow-up, nothing else
        before, after = changed[name].before, changed[name].after
        assert (before.follow_up_days, after.follow_up_days) == (14, 10)
        assert (before.tier, before.rules) == (after.tier, after.rules)
    for name in ("a-gap", "b-gap"):  # 45 days without a BP: now a data gap
        before, after = changed[name].before, changed[name].after
        assert after.rules - before.rules == {"data.gap"}
        assert "data.gap" not in before.rules
    overall = report.to_json()["overall"]
    gap_tiers = {(changed[n].before.tier, changed[n].after.tier) for n in ("a-gap", "b-gap")}
    assert overall["rules"]["data.gap"]["delta"] == 2
    assert "data.gap" in overall["rules_fire_more"]
    assert overall["follow_up_changed"] == sum(
        c.before.follow_up_days != c.after.follow_up_days for c in changed.values()
    )
    assert overall["tier_changed"] == sum(a != b for a, b in gap_tiers) * 2
    # Per team: each team's own patients only; the teamless one counted overall only.
    teams = report.to_json()["teams"]
    assert {t: teams[t]["patients"] for t in teams} == {"jimo-01": 3, "jimo-02": 2, "(no team)": 1}
    assert [teams[t]["changed"] for t in ("jimo-01", "jimo-02", "(no team)")] == [2, 2, 0]
    assert teams["jimo-02"]["rules"]["data.gap"]["delta"] == 1
    rows = report.csv().splitlines()
    assert rows[0].startswith("patient_id,external_id,team,tier_from,tier_to")
    assert [int(r.split(",")[0]) for r in rows[1:]] == sorted(ids[n] for n in changed)


def test_worker_processes_give_the_same_report(client: TestClient) -> None:
    _county(client)
    app: Any = client.app
    url = str(app.state.engine.url.render_as_string(hide_password=False))
    factory = partial(_editions, edited_pack().encode(), "candidate.yaml", None, AS_OF, "Asia/Shanghai")
    in_one = _run(client, edited_pack())
    in_two = measure_impact_in_workers(url, factory, AS_OF, 2, batch=2)
    assert in_two.to_json() == in_one.to_json()
    assert in_two.csv() == in_one.csv()


def test_an_invalid_or_reused_version_is_refused(client: TestClient) -> None:
    with pytest.raises(CandidatePackInvalid):
        _editions(b"rules: [", "bad.yaml", None, AS_OF, "Asia/Shanghai")
    same_version_other_content = edited_pack().replace('version: "2020.5-impact"', 'version: "2020.4"')
    with pytest.raises(CandidatePackInvalid, match="bump its version"):
        _editions(same_version_other_content.encode(), "x.yaml", None, AS_OF, "Asia/Shanghai")


def test_the_command_reports_writes_the_csv_and_refuses_a_bad_pack(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = _county(client)
    app: Any = client.app
    monkeypatch.setenv("PATHWAY_DATABASE_URL", app.state.engine.url.render_as_string(hide_password=False))
    pack = tmp_path / "new.yaml"
    pack.write_text(edited_pack(), encoding="utf-8")
    out = tmp_path / "changes.csv"
    argv = ["packs", "impact", "--pack", str(pack), "--as-of", AS_OF.isoformat(), "--workers", "1"]
    assert main([*argv, "--csv", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "6 patients, 4 changed" in text
    assert "team jimo-02: 2 patients, 2 changed" in text
    assert len(out.read_text(encoding="utf-8").splitlines()) == 5
    assert f"{ids['b-gap']},b-gap,jimo-02" in out.read_text(encoding="utf-8")
    pack.write_text("id: [", encoding="utf-8")
    assert main(argv) == 2
    assert "candidate-pack-invalid" in capsys.readouterr().err


def test_the_route_answers_the_report_and_refuses_a_bad_pack(client: TestClient) -> None:
    _county(client)
    expected = _run(client, edited_pack()).to_json()
    response = client.post("/v1/packs/impact", json={"pack_yaml": edited_pack(), "as_of": AS_OF.isoformat()})
    assert response.status_code == 200, response.text
    assert response.json()["overall"] == expected["overall"]
    assert response.json()["teams"] == expected["teams"]
    itself = client.post("/v1/packs/impact", json={"pack_version": "2020.4", "as_of": AS_OF.isoformat()})
    assert itself.status_code == 200, itself.text
    assert itself.json()["overall"]["changed"] == 0
    assert itself.json()["overall"]["patients"] == 6
    bad = client.post("/v1/packs/impact", json={"pack_yaml": "rules: [", "as_of": AS_OF.isoformat()})
    assert bad.status_code == 422
    assert bad.json()["code"] == "candidate-pack-invalid"


def test_the_batched_read_assesses_each_patient_as_a_replay_of_that_moment(client: TestClient) -> None:
    """The batch's histories (streams older than the short window included) give each patient the
    assessment ``assessment:preview`` gives at the same moment, read one patient at a time."""
    ids = _county(client)
    stream = register_patient(client, "stream", team_code="jimo-01", conditions=["hypertension", "diabetes"])
    readings = [
        {"kind": kind, "source": "home", "measured_at": (AS_OF - timedelta(days=days)).isoformat(), **value}
        for days, kind, value in (
            (200, "bp", {"systolic": 162, "diastolic": 96}),
            (60, "fpg", {"value": 9.4, "unit": "mmol/L"}),
            (50, "fpg", {"value": 6.1, "unit": "mmol/L"}),
            (3, "bp", {"systolic": 138, "diastolic": 86}),
            (1, "bp", {"systolic": 142, "diastolic": 88}),
        )
    ]
    response = client.post(f"/v1/patients/{stream}/readings", json=readings)
    assert response.status_code == 201, response.text
    assert response.json()["rejected"] == 0, response.text
    ids["stream"] = stream
    app: Any = client.app
    registry: PackRegistry = app.state.registry
    editions = impact_editions(registry, registry.get(), None, AS_OF.date(), CLINIC_TZ, app.state.evaluator)
    seen: list[Any] = []

    def recorded(history: Any, as_of: Any) -> Any:
        assessment = editions.baseline.assess(history, as_of)
        seen.append(assessment)
        return assessment

    spied = replace(editions, baseline=replace(editions.baseline, assess=recorded))
    with Session(app.state.engine) as session:
        report = measure_impact(session, spied, AS_OF, batch=3)
    assert report.overall.patients == 7
    assert report.changes == []
    for patient_id, assessment in zip(sorted(ids.values()), seen, strict=True):
        replay = client.post(
            f"/v1/patients/{patient_id}/assessment:preview", params={"as_of": AS_OF.isoformat()}
        )
        assert replay.status_code == 200, replay.text
        assert outcome_of(assessment) == _outcome(replay.json()), patient_id


def _outcome(body: dict[str, Any]) -> Outcome:
    referral = body.get("referral")
    return Outcome(
        tier=body["tier"],
        level=body["level"],
        referral=referral["urgency"] if referral else None,
        follow_up_days=body["follow_up"]["interval_days"],
        rules=frozenset(reason["rule_id"] for reason in body["reasons"]),
        task_kinds=frozenset(task["kind"] for task in body["tasks"]),
    )
