"""Changing a threshold or an interval in the pack's YAML changes behaviour, with no code change.

Each case edits one number in a copy of the default pack (and bumps its version), loads it with
``rules.registry.load_pack`` and evaluates the same history with the default pack and with the copy.
The same holds through ``pathway evaluate --check --pack``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from pathway.clinical.assessment import Assessment
from pathway.clinical.clock import CLINIC_TZ
from pathway.clinical.history import PatientHistory
from pathway.clinical.tiers import ManagementLevel, ReferralUrgency, RiskTier, TaskKind
from pathway.clinical.vocabulary import Condition, ReadingKind
from rules.evaluation import Evaluator
from rules.registry import DEFAULT_PACK_ID, PACKS_DIR, LoadedPack, PackRegistry, load_pack
from tests.builders import AS_OF, bp, days_before, history, hours_before, lab, patient, visit

DEFAULT_YAML = PACKS_DIR / DEFAULT_PACK_ID / "2020.yaml"


def default_data() -> dict[str, Any]:
    data = yaml.safe_load(DEFAULT_YAML.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def write_modified(directory: Path, version: str, edit: Callable[[dict[str, Any]], None]) -> Path:
    data = default_data()
    edit(data)
    data["version"] = version
    path = directory / f"{version}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def rule(data: dict[str, Any], rule_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(r for r in data["rules"] if r["id"] == rule_id)
    return found


def crisis_at_170(data: dict[str, Any]) -> None:
    assert data["snapshot"]["crisis"]["systolic"] == 180
    data["snapshot"]["crisis"]["systolic"] = 170


def uncontrolled_bp_follow_up_in_21_days(data: dict[str, Any]) -> None:
    assert rule(data, "bp.uncontrolled")["then"]["follow_up_days"] == 14
    rule(data, "bp.uncontrolled")["then"]["follow_up_days"] = 21


def lipid_recheck_after_28_days(data: dict[str, Any]) -> None:
    assert data["policy"]["tasks"]["lipid_recheck"]["due"]["after_days"] == 42
    data["policy"]["tasks"]["lipid_recheck"]["due"]["after_days"] = 28


def under_65_office_target_130_80(data: dict[str, Any]) -> None:
    band = next(b for b in data["targets"]["blood_pressure"] if b["label"] == "under_65")
    assert band["office"] == {"systolic": 140, "diastolic": 90}
    band["office"] = {"systolic": 130, "diastolic": 80}


LATEST_VISIT = days_before(10)
LDL_MEASURED = days_before(3)


def lipid_recheck_due(result: Assessment) -> datetime:
    return next(t.due for t in result.tasks if t.kind is TaskKind.LIPID_RECHECK)


@dataclass(frozen=True)
class Change:
    edit: Callable[[dict[str, Any]], None]
    history: PatientHistory
    observe: Callable[[Assessment], object]
    with_default: object
    with_modified: object


CHANGES = [
    pytest.param(
        Change(
            crisis_at_170,
            history(patient(Condition.HYPERTENSION), encounters=(visit(hours_before(1), bp(175, 95)),)),
            lambda r: (r.tier, r.referral and r.referral.urgency, r.referral and r.referral.rule_id),
            (RiskTier.YELLOW, None, None),
            (RiskTier.RED, ReferralUrgency.URGENT, "bp.crisis"),
        ),
        id="crisis-systolic-180-to-170",
    ),
    pytest.param(
        Change(
            uncontrolled_bp_follow_up_in_21_days,
            history(patient(Condition.HYPERTENSION), encounters=(visit(LATEST_VISIT, bp(150, 85)),)),
            lambda r: (r.follow_up.interval_days, r.follow_up.due, r.follow_up.rule_id),
            (14, LATEST_VISIT.date() + timedelta(days=14), "bp.uncontrolled"),
            (21, LATEST_VISIT.date() + timedelta(days=21), "bp.uncontrolled"),
        ),
        id="bp-uncontrolled-follow-up-14-to-21-days",
    ),
    pytest.param(
        Change(
            lipid_recheck_after_28_days,
            history(
                patient(Condition.DYSLIPIDEMIA, age=50),
                readings=(lab(ReadingKind.LDL_C, 4.0, LDL_MEASURED),),
            ),
            lipid_recheck_due,
            LDL_MEASURED + timedelta(days=42),
            LDL_MEASURED + timedelta(days=28),
        ),
        id="lipid-recheck-42-to-28-days",
    ),
    pytest.param(
        Change(
            under_65_office_target_130_80,
            history(patient(Condition.HYPERTENSION, age=60), encounters=(visit(LATEST_VISIT, bp(135, 85)),)),
            lambda r: (r.tier, r.level, [reason.rule_id for reason in r.reasons], r.facts["bp_target_sbp"]),
            (RiskTier.BLUE, ManagementLevel.HOME, [], 140.0),
            (RiskTier.YELLOW, ManagementLevel.BASE, ["bp.uncontrolled"], 130.0),
        ),
        id="under-65-office-target-140-90-to-130-80",
    ),
]


@pytest.mark.parametrize("change", CHANGES)
def test_editing_one_number_in_the_yaml_changes_the_outcome_of_the_same_history(
    tmp_path: Path, evaluator: Evaluator, default_pack: LoadedPack, change: Change
) -> None:
    modified = load_pack(write_modified(tmp_path, "2020.1-edited", change.edit))
    modified_evaluator = Evaluator(PackRegistry([modified]))

    with_default = evaluator.assess(change.history, AS_OF, default_pack)
    with_modified = modified_evaluator.assess(change.history, AS_OF, modified)

    assert change.observe(with_default) == change.with_default
    assert change.observe(with_modified) == change.with_modified
    assert with_default.pack.version == "2020.4"
    assert with_modified.pack.version == "2020.1-edited"
    assert with_modified.pack.sha256 == modified.sha256 != default_pack.sha256


def test_the_edited_pack_is_picked_without_a_version_when_it_is_the_only_one(tmp_path: Path) -> None:
    modified = load_pack(write_modified(tmp_path, "2020.1-crisis170", crisis_at_170))
    result = Evaluator(PackRegistry([modified])).assess(
        history(patient(Condition.HYPERTENSION), encounters=(visit(hours_before(1), bp(172, 88)),)), AS_OF
    )
    assert (result.tier, result.pack.version) == (RiskTier.RED, "2020.1-crisis170")


CRISIS_AT_170_CASE = {
    "name": "175/95 at the clinic is a crisis when the pack's crisis systolic is 170",
    "as_of": "2026-03-01T09:00:00+08:00",
    "patient": {"sex": "male", "birth_date": "1966-01-01", "conditions": ["hypertension"]},
    "encounters": [
        {"at": "2026-03-01T08:00:00+08:00", "readings": [{"kind": "bp", "systolic": 175, "diastolic": 95}]}
    ],
    "expect": {
        "tier": "red",
        "referral": "urgent",
        "follow_up_days": 14,
        "level": "center",
        "tasks_include": ["urgent_referral", "referral_follow_up"],
    },
}


def _pathway(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pathway", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).parents[2],
    )


@pytest.fixture
def crisis_case(tmp_path: Path) -> Path:
    path = tmp_path / "crisis-at-175.json"
    path.write_text(json.dumps(CRISIS_AT_170_CASE, ensure_ascii=False), encoding="utf-8")
    return path


def test_check_passes_with_the_edited_pack_and_fails_with_the_default_one(
    tmp_path: Path, crisis_case: Path
) -> None:
    modified = write_modified(tmp_path, "2020.1-crisis170", crisis_at_170)

    with_modified = _pathway("evaluate", "--check", "--pack", modified, crisis_case)
    assert with_modified.returncode == 0, with_modified.stdout + with_modified.stderr
    assert "ok   crisis-at-175.json" in with_modified.stdout
    assert "1 passed, 0 failed" in with_modified.stdout

    with_default = _pathway("evaluate", "--check", crisis_case)
    assert with_default.returncode == 1, with_default.stdout + with_default.stderr
    assert "FAIL crisis-at-175.json" in with_default.stdout
    assert "tier yellow (expected red)" in with_default.stdout
    assert "0 passed, 1 failed" in with_default.stdout


def test_evaluate_with_a_pack_file_records_that_packs_version_and_sha256(
    tmp_path: Path, crisis_case: Path
) -> None:
    modified = write_modified(tmp_path, "2020.1-crisis170", crisis_at_170)
    run = _pathway("evaluate", "--pack", modified, crisis_case)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["pack"] == {
        "id": DEFAULT_PACK_ID,
        "version": "2020.1-crisis170",
        "sha256": load_pack(modified).sha256,
    }
    assert result["tier"] == "red"
    assert date.fromisoformat(result["follow_up"]["due"]) == AS_OF.astimezone(CLINIC_TZ).date() + timedelta(
        days=14
    )


def test_a_broken_pack_file_is_a_one_line_error_naming_the_rule(tmp_path: Path, crisis_case: Path) -> None:
    def orange(data: dict[str, Any]) -> None:
        rule(data, "bp.crisis")["tier"] = "orange"

    broken = write_modified(tmp_path, "2020.1-broken", orange)
    run = _pathway("evaluate", "--check", "--pack", broken, crisis_case)
    assert run.returncode == 2
    assert run.stdout == ""
    assert run.stderr.count("\n") == 1
    assert "2020.1-broken.yaml: rule 'bp.crisis'.tier" in run.stderr
