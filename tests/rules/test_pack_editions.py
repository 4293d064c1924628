"""A second pack as a worked example of an edited pathway: the 即墨区 county edition is data only.

``rules/packs/sangao-qingdao-jimo/2026.yaml`` is a complete copy of the default pack with a few
documented edits. Its cases (``tests/rules/editions/<id>/``) come in pairs — the same history, one
file naming the default pack and one naming the county's — so each edit is seen firing differently,
and the pairs marked ``-unchanged`` show what the edition leaves alone. The two YAML files are diffed
structurally: any difference not listed here (and in the pack's header) fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pathway.cli import main
from pathway.clinical.clock import clinic_date
from pathway.ingest.cases import case_history, differences, read_case
from rules.evaluation import Evaluator
from rules.registry import DEFAULT_PACK_ID, PACKS_DIR, PackRegistry

ROOT = Path(__file__).resolve().parents[2]
EDITION = "sangao-qingdao-jimo"
EDITION_YAML = PACKS_DIR / EDITION / "2026.yaml"
DEFAULT_YAML = PACKS_DIR / DEFAULT_PACK_ID / "2020.yaml"
CASES = ROOT / "tests" / "rules" / "editions" / EDITION
CASE_FILES = sorted(CASES.glob("*.json"))
UNCHANGED = "-unchanged"

RULE_EDITS = ("then.follow_up_days", "then.message.zh", "then.message.en", "source")
# Every path at which the county edition differs from the default pack, and nothing else.
DOCUMENTED = {
    "id",
    "version",
    "effective_from",
    "title.zh",
    "title.en",
    "sources.即墨",
    "targets.source",
    "targets.blood_pressure[under_65].home.systolic",
    "targets.blood_pressure[under_65].home.diastolic",
    "targets.blood_pressure[aged_65_plus].home.systolic",
    *(f"rules[{rule}].{edit}" for rule in ("bp.uncontrolled", "glu.uncontrolled") for edit in RULE_EDITS),
}


def _paths_that_differ(a: Any, b: Any, where: str = "") -> Iterator[str]:
    """Where two YAML documents differ: mappings by key, lists of ids or labels by them, else by index."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            inner = f"{where}.{key}" if where else str(key)
            if key not in a or key not in b:
                yield inner
            else:
                yield from _paths_that_differ(a[key], b[key], inner)
    elif isinstance(a, list) and isinstance(b, list) and _named(a) and _named(b):
        left, right = _by_name(a), _by_name(b)
        for name in sorted(set(left) | set(right)):
            inner = f"{where}[{name}]"
            if name not in left or name not in right:
                yield inner
            else:
                yield from _paths_that_differ(left[name], right[name], inner)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from _paths_that_differ(x, y, f"{where}[{index}]")
    elif a != b:
        yield where


def _named(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(i, dict) and ("id" in i or "label" in i) for i in items)


def _by_name(items: list[Any]) -> dict[str, Any]:
    return {str(i.get("id", i.get("label"))): i for i in items}


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


def _rule(data: dict[str, Any], rule_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(r for r in data["rules"] if r["id"] == rule_id)
    return found


def _bp_row(data: dict[str, Any], label: str) -> dict[str, Any]:
    found: dict[str, Any] = next(r for r in data["targets"]["blood_pressure"] if r["label"] == label)
    return found


def test_the_edition_differs_from_the_default_pack_only_where_documented() -> None:
    default, edition = _load(DEFAULT_YAML), _load(EDITION_YAML)
    assert set(_paths_that_differ(default, edition)) == DOCUMENTED


def test_each_edit_is_the_local_policy_its_header_says() -> None:
    default, edition = _load(DEFAULT_YAML), _load(EDITION_YAML)
    assert edition["id"] == EDITION != default["id"]
    assert "即墨" in edition["sources"]
    assert "即墨" not in default["sources"]
    assert "即墨" in edition["targets"]["source"]
    for label in ("under_65", "aged_65_plus"):  # stricter: never a higher home target
        before, after = _bp_row(default, label)["home"], _bp_row(edition, label)["home"]
        assert after != before
        assert all(after[side] <= before[side] for side in ("systolic", "diastolic")), label
        assert _bp_row(edition, label)["office"] == _bp_row(default, label)["office"]
    for rule_id in ("bp.uncontrolled", "glu.uncontrolled"):  # yellow, and followed up sooner
        before, after = _rule(default, rule_id), _rule(edition, rule_id)
        assert after["tier"] == "yellow"
        assert after["then"]["follow_up_days"] < before["then"]["follow_up_days"]
        assert after["source"].startswith("即墨")
        assert after["when"] == before["when"]
    header = EDITION_YAML.read_text(encoding="utf-8").split("\nid:", 1)[0]
    assert all(line.startswith("#") for line in header.splitlines())
    for named in (
        "PATHWAY_PACK_ID",
        "bp.uncontrolled",
        "glu.uncontrolled",
        "under_65",
        "aged_65_plus",
        "home",
    ):
        assert named in header, named


def _pairs() -> dict[str, dict[str, dict[str, Any]]]:
    pairs: dict[str, dict[str, dict[str, Any]]] = {}
    for path in CASE_FILES:
        stem, pack = path.name.removesuffix(".json").rsplit(".", 1)
        pairs.setdefault(stem, {})[pack] = json.loads(path.read_text(encoding="utf-8"))
    return pairs


def test_the_cases_are_pairs_of_one_history_under_the_two_packs() -> None:
    pairs = _pairs()
    changed = [stem for stem in pairs if not stem.endswith(UNCHANGED)]
    assert len(changed) >= 6
    assert len(pairs) - len(changed) >= 3
    for stem, by_pack in pairs.items():
        assert set(by_pack) == {DEFAULT_PACK_ID, EDITION}, stem
        for pack, case in by_pack.items():
            assert case["pack"] == pack, stem
        inputs = [
            {k: v for k, v in case.items() if k not in ("name", "pack", "expect")}
            for case in by_pack.values()
        ]
        assert inputs[0] == inputs[1], f"{stem}: the two files must hold the same history"
        same = by_pack[DEFAULT_PACK_ID]["expect"] == by_pack[EDITION]["expect"]
        assert same == stem.endswith(UNCHANGED), stem


@pytest.mark.parametrize("path", CASE_FILES, ids=lambda p: p.name)
def test_each_case_holds_for_the_pack_it_names(
    path: Path, registry: PackRegistry, evaluator: Evaluator
) -> None:
    case = read_case(path)
    assert case.pack is not None
    assert case.expect is not None
    pack = registry.in_force(case.pack, on=clinic_date(case.as_of))
    history = case_history(case, pack.pack.units, pack.pack.plausibility, pack.pack.medication)
    result = evaluator.assess(history, case.as_of, pack)
    assert result.pack.id == case.pack
    assert differences(case.expect, result) == []


def _pathway(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pathway", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


def test_pathway_evaluate_check_runs_every_case_under_the_pack_it_names() -> None:
    run = _pathway("evaluate", "--check", *CASE_FILES)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.splitlines()[-1] == f"{len(CASE_FILES)} passed, 0 failed, 0 bad"


def test_evaluate_pack_id_overrides_the_case_and_the_county_edits_show() -> None:
    """The default pack's side of each pair, evaluated with ``--pack sangao-qingdao-jimo``: exactly
    the pairs the edition changes fail, the unchanged ones pass."""
    default_side = sorted(CASES.glob(f"*.{DEFAULT_PACK_ID}.json"))
    run = _pathway("evaluate", "--check", "--pack", EDITION, *default_side)
    assert run.returncode == 1
    failed = {line.split()[1].rstrip(":") for line in run.stdout.splitlines() if line.startswith("FAIL")}
    expected = {p.name for p in default_side if not p.name.startswith(tuple(_unchanged_stems()))}
    assert failed == expected
    evaluated = json.loads(_pathway("evaluate", "--pack", EDITION, default_side[0]).stdout)
    assert evaluated["pack"]["id"] == EDITION


def _unchanged_stems() -> list[str]:
    return [f"{stem}." for stem in _pairs() if stem.endswith(UNCHANGED)]


def test_an_unknown_pack_id_is_a_bad_case_not_a_crash() -> None:
    run = _pathway("evaluate", "--check", "--pack", "no-such-pack", CASE_FILES[0])
    assert run.returncode == 2
    assert run.stdout.startswith(f"BAD  {CASE_FILES[0].name}: ")
    assert "no rule pack no-such-pack" in run.stdout


def test_every_other_pack_has_its_committed_document(capsys: pytest.CaptureFixture[str]) -> None:
    """Like docs/PATHWAY.md for the default pack: docs/PATHWAY-<id>.md is the command's output."""
    others = sorted({p.pack.id for p in PackRegistry.from_directory().all()} - {DEFAULT_PACK_ID})
    assert EDITION in others
    for pack_id in others:
        assert main(["packs", "describe", "--pack", pack_id, "--format", "md"]) == 0
        doc = ROOT / "docs" / f"PATHWAY-{pack_id}.md"
        assert doc.read_text(encoding="utf-8") == capsys.readouterr().out, (
            f"run `.venv/bin/pathway packs describe --pack {pack_id} --format md > {doc.relative_to(ROOT)}`"
        )
