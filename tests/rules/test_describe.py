"""`pathway packs describe`: the pack in words; the committed docs/PATHWAY.md is its output (drift check)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pathway.cli import main
from rules import describe
from rules.registry import PACKS_DIR, PackRegistry, load_pack

DOC = Path(__file__).resolve().parents[2] / "docs" / "PATHWAY.md"


def test_the_committed_pathway_document_is_what_the_pack_says(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["packs", "describe", "--format", "md"]) == 0
    assert DOC.read_text(encoding="utf-8") == capsys.readouterr().out, (
        "run `.venv/bin/pathway packs describe --format md > docs/PATHWAY.md` and commit the result"
    )


def test_every_rule_schedule_and_task_is_described(registry: PackRegistry) -> None:
    loaded = registry.get()
    doc = describe.markdown(loaded)
    for rule in loaded.pack.rules:
        assert f"#### `{rule.id}`" in doc
        assert rule.source in doc
        assert rule.then.message.zh in doc
    for schedule in loaded.pack.schedules:
        assert f"`{schedule.id}`" in doc
    for kind in loaded.pack.policy.tasks:
        assert f"| `{kind.value}` |" in doc
    assert loaded.sha256 in doc
    assert doc.startswith("<!-- GENERATED")


def test_conditions_read_as_the_engine_means_them(registry: PackRegistry) -> None:
    pack = registry.get().pack
    assert describe.readable(pack.rule("bp.uncontrolled").when, md=False) == (
        "has_hypertension and (office_sbp ≥ bp_target_sbp or office_dbp ≥ bp_target_dbp"
        " or home_sbp_mean ≥ home_bp_target_sbp or home_dbp_mean ≥ home_bp_target_dbp)"
    )
    assert (
        describe.readable(pack.rule("glu.high").when)
        == "`acute_glucose_max` ≥ 16.7 and not `hyperglycaemic_sign`"
    )
    assert "`days_since_last_bp` is missing or `days_since_last_bp` > 90" in describe.readable(
        pack.rule("data.gap").when
    )
    outcome = describe.outcome_text(pack.rule("lipid.above_target").then, 90, md=False)
    assert outcome == "follow-up within 42 days; tasks lipid_recheck"
    referral = describe.outcome_text(pack.rule("bp.crisis.symptomatic").then, 90, md=False)
    assert referral == "emergency referral; follow-up within 14 days"


def test_the_document_follows_the_packs_data(tmp_path: Path) -> None:
    """A changed threshold changes the document: the words come from the pack, not from code."""
    text = (PACKS_DIR / "sangao-cn" / "2020.yaml").read_text(encoding="utf-8")
    edited = tmp_path / "edited.yaml"
    edited.write_text(text.replace("{fact: tg, gte: 11.3}", "{fact: tg, gte: 12.5}"), encoding="utf-8")
    doc = describe.markdown(load_pack(edited))
    assert "`tg` ≥ 12.5" in doc
    assert "`tg` ≥ 11.3" not in doc


def test_describe_names_a_pack_and_version_and_refuses_unknown_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["packs", "describe", "--pack", "sangao-cn", "--version", "2020.4", "--format", "text"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("sangao-cn 2020.4")
    assert any(
        line.startswith("red    bp.crisis: when bp_crisis_confirmed => urgent referral") for line in lines
    )
    assert main(["packs", "describe", "--version", "1999.1"]) == 2
    assert "unknown-rule-pack" in capsys.readouterr().err
    assert main(["packs"]) == 0  # the list of packs still answers without a subcommand
    assert capsys.readouterr().out.startswith("sangao-cn\t2020.4")
