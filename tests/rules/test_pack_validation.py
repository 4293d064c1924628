"""A broken rule pack is one clear InvalidRulePack naming the file and the rule at fault.

Each case writes a modified copy of the default pack's YAML into ``tmp_path`` and loads it with
``rules.registry.load_pack``; the registry holds several editions, picked by date or by version.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from pathway.clinical.errors import InvalidRulePack, UnknownRulePack
from rules.registry import DEFAULT_PACK_ID, PACKS_DIR, LoadedPack, PackRegistry, load_pack

DEFAULT_YAML = PACKS_DIR / DEFAULT_PACK_ID / "2020.yaml"

Mutation = Callable[[dict[str, Any]], None]


def default_data() -> dict[str, Any]:
    data = yaml.safe_load(DEFAULT_YAML.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def write_pack(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def entry(data: dict[str, Any], item_id: str) -> dict[str, Any]:
    """The rule or schedule with this id."""
    found: dict[str, Any] = next(r for r in [*data["rules"], *data["schedules"]] if r["id"] == item_id)
    return found


def set_when(item_id: str, when: dict[str, Any]) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        entry(data, item_id)["when"] = when

    return mutate


def unknown_field_in_rule(data: dict[str, Any]) -> None:
    entry(data, "bp.crisis")["severity"] = "high"


def unknown_tier(data: dict[str, Any]) -> None:
    entry(data, "bp.crisis")["tier"] = "orange"


def duplicate_rule_id(data: dict[str, Any]) -> None:
    twin = copy.deepcopy(entry(data, "glu.high"))
    twin["id"] = "bp.crisis"
    data["rules"].append(twin)


def duplicate_schedule_id(data: dict[str, Any]) -> None:
    twin = copy.deepcopy(entry(data, "schedule.screening.foot"))
    twin["id"] = "bp.uncontrolled"
    data["schedules"].append(twin)


def unknown_task_kind(data: dict[str, Any]) -> None:
    entry(data, "data.gap")["then"]["tasks"] = ["phone_call"]


def task_missing_from_the_catalogue(data: dict[str, Any]) -> None:
    del data["policy"]["tasks"]["lipid_recheck"]


def unknown_referral_urgency(data: dict[str, Any]) -> None:
    entry(data, "bp.crisis")["then"]["referral"] = "immediate"


def missing_message_language(data: dict[str, Any]) -> None:
    del entry(data, "bp.crisis")["then"]["message"]["en"]


def stratum_without_ldl_target(data: dict[str, Any]) -> None:
    del data["targets"]["lipids"]["ldl_targets"]["very_high"]


def policy_missing_a_level(data: dict[str, Any]) -> None:
    del data["policy"]["levels"]["yellow"]


def task_without_a_role(data: dict[str, Any]) -> None:
    del data["policy"]["tasks"]["bp_recheck"]["role"]


def task_with_an_unknown_role(data: dict[str, Any]) -> None:
    data["policy"]["tasks"]["bp_recheck"]["role"] = "nurse"


def task_without_a_time_limit(data: dict[str, Any]) -> None:
    del data["policy"]["tasks"]["follow_up_visit"]["time_limit_hours"]


def task_resolved_by_nothing(data: dict[str, Any]) -> None:
    data["policy"]["tasks"]["lipid_recheck"]["resolved_by"] = {}


def escalation_without_a_source(data: dict[str, Any]) -> None:
    del data["policy"]["follow_through"]["escalation"]["source"]


def missed_3m_after_lost_to_follow_up(data: dict[str, Any]) -> None:
    data["policy"]["follow_through"]["missed_3m"]["no_contact_days"] = 400


def unknown_fact_in_target_band(data: dict[str, Any]) -> None:
    data["targets"]["blood_pressure"][1]["when"] = {"fact": "age_years", "lt": 65}


BROKEN_PACKS = [
    pytest.param(
        unknown_field_in_rule,
        ["rule 'bp.crisis'.severity", "Extra inputs are not permitted"],
        id="unknown-field-in-rule",
    ),
    pytest.param(
        set_when("complication.new", {"fact": "newest_complication_age_days", "between": [0, 90]}),
        ["rule 'complication.new'.when.comparison.between", "Extra inputs are not permitted"],
        id="unknown-operator-between",
    ),
    pytest.param(
        set_when("complication.new", {"fact": "newest_complication_age_days", "gte": 0, "lte": 90}),
        ["rule 'complication.new'", "exactly one operator", "'lte', 'gte'"],
        id="two-operators-in-one-comparison",
    ),
    pytest.param(
        unknown_tier, ["rule 'bp.crisis'.tier", "'red', 'yellow' or 'blue'"], id="unknown-tier-orange"
    ),
    pytest.param(
        set_when("bp.crisis", {"fact": "office_sbp_max", "gte": 180}),
        ["rule 'bp.crisis'", "unknown fact 'office_sbp_max'"],
        id="unknown-fact",
    ),
    pytest.param(
        set_when(
            "bp.crisis",
            {"all": [{"fact": "office_sbp", "gte": 180}, {"fact": "bp_targt_sbp", "exists": True}]},
        ),
        ["rule 'bp.crisis'", "unknown fact 'bp_targt_sbp'"],
        id="unknown-fact-in-exists",
    ),
    pytest.param(
        set_when("bp.crisis", {"fact": "office_sbp", "gte": {"fact": "office_sbp_target"}}),
        ["rule 'bp.crisis'", "unknown fact 'office_sbp_target'"],
        id="unknown-fact-on-the-right",
    ),
    pytest.param(
        set_when("complication.new", {"fact": "newest_complication_age_days", "lte": "90"}),
        ["rule 'complication.new'", "'newest_complication_age_days' is int", "'90' (str)"],
        id="numeric-fact-compared-with-string",
    ),
    pytest.param(
        set_when("bp.crisis", {"fact": "bp_crisis_confirmed", "eq": 1}),
        ["rule 'bp.crisis'", "'bp_crisis_confirmed' is bool", "1 (int)"],
        id="bool-fact-compared-with-number",
    ),
    pytest.param(
        set_when("bp.crisis", {"fact": "bp_crisis_confirmed", "lt": True}),
        ["rule 'bp.crisis'", "'bp_crisis_confirmed' is bool; use eq or ne"],
        id="bool-fact-with-lt",
    ),
    pytest.param(
        set_when("bp.uncontrolled", {"fact": "office_sbp", "gte": {"fact": "has_diabetes"}}),
        ["rule 'bp.uncontrolled'", "'office_sbp' and 'has_diabetes' are not comparable"],
        id="numeric-fact-compared-with-bool-fact",
    ),
    pytest.param(duplicate_rule_id, ["rule 'bp.crisis'", "id used twice"], id="duplicate-rule-id"),
    pytest.param(
        duplicate_schedule_id, ["rule 'bp.uncontrolled'", "id used twice"], id="schedule-reusing-a-rule-id"
    ),
    pytest.param(unknown_task_kind, ["rule 'data.gap'.then.tasks.0", "'data_gap'"], id="unknown-task-kind"),
    pytest.param(
        task_missing_from_the_catalogue,
        ["rule 'lipid.above_target'", "['lipid_recheck'] are not in the policy's task catalogue"],
        id="task-kind-missing-from-the-catalogue",
    ),
    pytest.param(
        unknown_referral_urgency,
        ["rule 'bp.crisis'.then.referral", "'emergency', 'urgent' or 'routine'"],
        id="unknown-referral-urgency",
    ),
    pytest.param(
        missing_message_language,
        ["rule 'bp.crisis'.then.message.en", "Field required"],
        id="missing-message-language",
    ),
    pytest.param(
        set_when("schedule.screening.foot", {"fact": "has_diabetis", "eq": True}),
        ["rule 'schedule.screening.foot'", "unknown fact 'has_diabetis'"],
        id="unknown-fact-in-schedule",
    ),
    pytest.param(
        unknown_fact_in_target_band,
        ["targets.blood_pressure.under_65", "unknown fact 'age_years'"],
        id="unknown-fact-in-target-band",
    ),
    pytest.param(
        stratum_without_ldl_target,
        ["targets.lipids", "strata without an LDL-C target", "very_high"],
        id="stratum-without-ldl-target",
    ),
    pytest.param(
        task_without_a_role, ["policy.tasks.bp_recheck.role", "Field required"], id="task-without-a-role"
    ),
    pytest.param(
        task_with_an_unknown_role,
        ["policy.tasks.bp_recheck.role", "'gp', 'health_manager' or 'specialist'"],
        id="task-with-an-unknown-role",
    ),
    pytest.param(
        task_without_a_time_limit,
        ["policy.tasks.follow_up_visit.time_limit_hours", "Field required"],
        id="task-without-a-time-limit",
    ),
    pytest.param(
        task_resolved_by_nothing,
        ["policy.tasks.lipid_recheck.resolved_by", "at least one kind of evidence"],
        id="task-resolved-by-nothing",
    ),
    pytest.param(
        escalation_without_a_source,
        ["policy.follow_through.escalation.source", "Field required"],
        id="escalation-without-a-source",
    ),
    pytest.param(
        missed_3m_after_lost_to_follow_up,
        ["policy.follow_through", "missed_3m must come before lost_to_follow_up"],
        id="missed-3m-after-lost-to-follow-up",
    ),
    pytest.param(
        policy_missing_a_level,
        ["policy", "levels needs a management level for every tier"],
        id="policy-missing-a-level-for-a-tier",
    ),
]


@pytest.mark.parametrize(("mutate", "fragments"), BROKEN_PACKS)
def test_a_broken_pack_is_rejected_with_a_message_naming_the_file_and_the_culprit(
    tmp_path: Path, mutate: Mutation, fragments: list[str]
) -> None:
    data = default_data()
    mutate(data)
    path = write_pack(tmp_path / "broken.yaml", data)
    with pytest.raises(InvalidRulePack) as raised:
        load_pack(path)
    message = str(raised.value)
    assert message.startswith("invalid-rule-pack: broken.yaml: "), message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert "\n" not in message
    assert "#" not in message, f"a list index instead of the rule id: {message}"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param("id: sangao-cn\nrules: [unclosed\n", "not valid YAML", id="invalid-yaml"),
        pytest.param("id: sangao-cn\n\tversion: '1'\n", "not valid YAML", id="tab-indentation"),
        pytest.param("- id: sangao-cn\n- version: '1'\n", "a rule pack must be a mapping", id="a-list"),
        pytest.param("just a string\n", "a rule pack must be a mapping", id="a-scalar"),
        pytest.param("", "a rule pack must be a mapping", id="an-empty-file"),
    ],
)
def test_a_file_that_is_not_a_yaml_mapping_is_rejected_naming_the_file(
    tmp_path: Path, text: str, fragment: str
) -> None:
    path = tmp_path / "garbled.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidRulePack, match="garbled.yaml") as raised:
        load_pack(path)
    assert fragment in str(raised.value)


def test_an_unmodified_copy_of_the_default_pack_loads_to_the_same_pack(
    tmp_path: Path, default_pack: LoadedPack
) -> None:
    copied = load_pack(write_pack(tmp_path / "copy.yaml", default_data()))
    assert copied.pack == default_pack.pack


def test_a_directory_with_one_broken_pack_gives_no_registry_at_all(tmp_path: Path) -> None:
    (tmp_path / DEFAULT_PACK_ID).mkdir()
    write_pack(tmp_path / DEFAULT_PACK_ID / "2020.yaml", default_data())
    broken = default_data()
    broken["version"] = "2021.1"
    unknown_tier(broken)
    write_pack(tmp_path / DEFAULT_PACK_ID / "2021.yaml", broken)
    with pytest.raises(InvalidRulePack, match=r"2021\.yaml: rule 'bp\.crisis'\.tier"):
        PackRegistry.from_directory(tmp_path)


def test_the_registry_rejects_the_same_pack_id_and_version_twice(tmp_path: Path) -> None:
    first = load_pack(write_pack(tmp_path / "a.yaml", default_data()))
    retitled = default_data()
    retitled["title"]["en"] = "the same version, edited without a version bump"
    second = load_pack(write_pack(tmp_path / "b.yaml", retitled))
    with pytest.raises(InvalidRulePack, match=r"pack sangao-cn version 2020\.4 is defined twice \(b\.yaml\)"):
        PackRegistry([first, second])


@pytest.fixture
def two_editions(tmp_path: Path) -> PackRegistry:
    later = default_data()
    later["version"] = "2025.1"
    later["effective_from"] = date(2025, 7, 1)
    return PackRegistry([load_pack(DEFAULT_YAML), load_pack(write_pack(tmp_path / "2025.1.yaml", later))])


@pytest.mark.parametrize(
    ("on", "version"),
    [
        pytest.param(date(2020, 1, 1), "2020.4", id="first-day-of-2020"),
        pytest.param(date(2025, 6, 30), "2020.4", id="day-before-2025.1"),
        pytest.param(date(2025, 7, 1), "2025.1", id="first-day-of-2025.1"),
        pytest.param(date(2026, 3, 1), "2025.1", id="later"),
        pytest.param(None, "2025.1", id="no-date-is-the-newest"),
    ],
)
def test_the_edition_in_force_is_picked_by_date(
    two_editions: PackRegistry, on: date | None, version: str
) -> None:
    assert two_editions.in_force(DEFAULT_PACK_ID, on=on).pack.version == version


def test_an_edition_is_picked_by_version_whatever_the_date(two_editions: PackRegistry) -> None:
    assert two_editions.get(DEFAULT_PACK_ID, "2020.4").pack.version == "2020.4"
    assert two_editions.get(DEFAULT_PACK_ID, "2025.1").pack.effective_from == date(2025, 7, 1)
    assert two_editions.get(DEFAULT_PACK_ID).pack.version == "2025.1"
    assert [p.pack.version for p in two_editions.all()] == ["2020.4", "2025.1"]


def test_a_missing_version_id_or_date_is_an_unknown_rule_pack(two_editions: PackRegistry) -> None:
    with pytest.raises(UnknownRulePack, match=r"no rule pack sangao-cn version 2019\.9"):
        two_editions.get(DEFAULT_PACK_ID, "2019.9")
    with pytest.raises(UnknownRulePack, match="no rule pack sangao-us"):
        two_editions.get("sangao-us")
    with pytest.raises(UnknownRulePack, match="in force on 2019-12-31"):
        two_editions.in_force(DEFAULT_PACK_ID, on=date(2019, 12, 31))


def test_the_loaded_packs_sha256_is_the_files_and_changes_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "pack.yaml"
    path.write_bytes(DEFAULT_YAML.read_bytes())
    before = load_pack(path)
    assert before.sha256 == hashlib.sha256(DEFAULT_YAML.read_bytes()).hexdigest()
    assert before.ref.sha256 == before.sha256

    path.write_bytes(DEFAULT_YAML.read_bytes() + "# 审阅：无改动\n".encode())
    commented = load_pack(path)
    assert commented.pack == before.pack
    assert commented.sha256 != before.sha256

    data = default_data()
    data["snapshot"]["crisis"]["systolic"] = 170
    edited = load_pack(write_pack(path, data))
    assert edited.sha256 not in (before.sha256, commented.sha256)
    assert edited.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "bad_entry", [None, "bp.crisis", ["bp.crisis"]], ids=["empty-item", "string", "list"]
)
def test_a_rule_entry_that_is_not_a_mapping_is_an_invalid_rule_pack(
    tmp_path: Path, bad_entry: object
) -> None:
    data = default_data()
    data["rules"].insert(1, bad_entry)
    with pytest.raises(InvalidRulePack, match=r"rule '#1'"):
        load_pack(write_pack(tmp_path / "broken.yaml", data))
