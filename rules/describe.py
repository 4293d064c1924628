"""A rule pack in words: ``pathway packs describe`` (and the committed ``docs/PATHWAY.md``).

Pure functions of a loaded pack: every rule (id, tier, its condition in readable form, its outcome:
referral, follow-up, tasks; its message and source), the schedules, how fired rules combine into an
assessment, the referrals, the task catalogue and the follow-through policy. Every number printed
comes from the pack; nothing here knows a clinical value.
"""

from __future__ import annotations

from collections.abc import Iterable

from pathway.clinical.conditions import AllOf, AnyOf, Comparison, FactRef
from pathway.clinical.policy import Outcome, TaskDue, TaskSpec
from pathway.clinical.tiers import RiskTier
from rules.registry import PACKS_DIR, LoadedPack
from rules.schema import Rule, RulePack

_SYMBOLS = {"eq": "=", "ne": "≠", "lt": "<", "lte": "≤", "gt": ">", "gte": "≥"}
_TIER_WORDS = {RiskTier.RED: "红", RiskTier.YELLOW: "黄", RiskTier.BLUE: "蓝"}
_ANCHORS = {
    "as_of": "the assessment",
    "unconfirmed_crisis_reading": "the unconfirmed crisis reading",
    "ldl_c_measured": "the LDL-C measurement",
    "follow_up_due": "the follow-up due date",
    "last_check": "the last check of its kind (else the assessment)",
    "latest_encounter": "the latest visit",
    "supply_end": "the prescription's supply end",
}


def _fact(name: str, md: bool) -> str:
    return f"`{name}`" if md else name


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def readable(condition: AllOf | AnyOf | Comparison, md: bool = True, nested: bool = False) -> str:
    """A condition as one line: ``a and (b or c)``; a comparison with an absent fact is false."""
    if isinstance(condition, AllOf | AnyOf):
        parts = condition.all if isinstance(condition, AllOf) else condition.any
        joiner = " and " if isinstance(condition, AllOf) else " or "
        text = joiner.join(readable(part, md, nested=True) for part in parts)
        return f"({text})" if nested and len(parts) > 1 else text
    fact, op, operand = _fact(condition.fact, md), condition.op, condition.operand
    if op == "exists":
        return f"{fact} is known" if operand else f"{fact} is missing"
    if isinstance(operand, bool) and op in ("eq", "ne"):
        return fact if (operand is True) == (op == "eq") else f"not {fact}"
    right = _fact(operand.fact, md) if isinstance(operand, FactRef) else _value(operand)
    return f"{fact} {_SYMBOLS[op]} {right}"


def outcome_text(outcome: Outcome, default_follow_up_days: int, md: bool = True) -> str:
    """Referral, follow-up interval and tasks of a rule, in words."""
    parts = (
        [f"**{outcome.referral.value} referral**" if md else f"{outcome.referral.value} referral"]
        if (outcome.referral)
        else []
    )
    if outcome.follow_up_days is not None:
        parts.append(f"follow-up within {outcome.follow_up_days} days")
    else:
        parts.append(f"no follow-up interval of its own (default {default_follow_up_days} days)")
    if outcome.tasks:
        named = [
            _fact(t.value, md) + (f" (due {_due_text(outcome.task_due[t])})" if t in outcome.task_due else "")
            for t in outcome.tasks
        ]
        parts.append("tasks " + ", ".join(named))
    if outcome.medication_group is not None:
        parts.append(f"about the {outcome.medication_group.value} medication")
    return "; ".join(parts)


def _rules_by_tier(rules: Iterable[Rule]) -> list[Rule]:
    return sorted(rules, key=lambda r: -r.tier.severity)  # stable: pack order within a tier


def _hours(hours: int) -> str:
    return f"{hours} h ({hours // 24} d)" if hours >= 24 and hours % 24 == 0 else f"{hours} h"


def _due(spec: TaskSpec) -> str:
    return _due_text(spec.due)


def _due_text(due: TaskDue) -> str:
    text = _ANCHORS.get(due.anchor, due.anchor)
    if due.after_days:
        text += f" + {due.after_days} d"
    if due.after_hours:
        text += f" + {due.after_hours} h"
    if due.before_days:
        text += f" − {due.before_days} d"
    if due.not_before_as_of:
        text += ", not before the assessment"
    return text


def _priority(spec: TaskSpec) -> str:
    if spec.priority_by_tier is not None:
        return " · ".join(f"{tier.value} {spec.priority_by_tier[tier]}" for tier in _severe_first())
    return str(spec.priority)


def _resolved_by(spec: TaskSpec) -> str:
    by = spec.resolved_by
    found = ["a visit"] if by.encounter else []
    found += [f"a new {kind.value} reading" for kind in by.readings]
    if by.check:
        found.append("the check recorded")
    if by.referral:
        found.append("the referral accepted (leaving open)")
    if by.no_longer_called:
        found.append("no rule calling for it any more")
    if by.prescription:
        found.append("a prescription of the rule's medication group started, changed or stopped")
    found += [f"a {c.value} prescription" for c in by.prescription_classes]
    found += [f"a visit recording adherence {a.value}" for a in by.adherence]
    if by.refill:
        found.append("a newer prescription of its class, or its stop")
    return "; ".join(found)


def _severe_first() -> list[RiskTier]:
    return sorted(RiskTier, key=lambda t: -t.severity)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def markdown(loaded: LoadedPack) -> str:
    """The pack as a Markdown document (``docs/PATHWAY.md`` is this, for the default pack)."""
    pack, policy = loaded.pack, loaded.pack.policy
    try:
        where = loaded.path.resolve().relative_to(PACKS_DIR.parent.parent).as_posix()
    except ValueError:
        where = loaded.path.name
    out = [
        f"<!-- GENERATED by `pathway packs describe --pack {pack.id} --version {pack.version} --format md` "
        "from the rule pack: do not edit; edit the pack (bump its version) and regenerate. -->",
        "",
        f"# {pack.title.zh}",
        "",
        f"*{pack.title.en}*",
        "",
        f"Rule pack `{pack.id}`, version `{pack.version}`, in force from {pack.effective_from.isoformat()}: "
        f"`{where}` (sha256 `{loaded.sha256}`). Every assessment records the pack id, version and sha256 "
        "it was made under. This document is generated from that file; the file is the contract.",
        "",
        "## How an assessment is made",
        "",
        "- The patient's history becomes a snapshot of facts; every rule whose condition holds fires. A "
        "comparison with a fact the patient does not have is false; *is known* / *is missing* test presence.",
        "- **Tier**: the most severe tier of the fired rules (red, then yellow, then blue); blue when none "
        "fires.",
        "- **Management level** by tier: "
        + ", ".join(f"{t.value} → `{policy.levels[t].value}`" for t in _severe_first())
        + ".",
        "- **Referral**: the most urgent of the fired rules' referrals (rank 1 first; see *Referrals*).",
        "- **Follow-up**: the shortest interval of the fired rules, else "
        f"{policy.default_follow_up_days} days, counted from the latest visit (never before today); it "
        f"calls for the task `{policy.follow_up_task.value}`.",
        "- **Tasks**: the referral's tasks, the follow-up task, each fired rule's tasks and each fired "
        "schedule's task (see *Task catalogue*); at most one open task per patient, kind and subject.",
        "",
        f"Source: {policy.source}",
        "",
        "## Rules",
    ]
    current: RiskTier | None = None
    for rule in _rules_by_tier(pack.rules):
        if rule.tier is not current:
            current = rule.tier
            level = policy.levels[rule.tier].value
            out += ["", f"### {rule.tier.value.capitalize()} ({_TIER_WORDS[rule.tier]}) → level `{level}`"]
        then = rule.then
        out += [
            "",
            f"#### `{rule.id}`",
            "",
            f"- **When**: {readable(rule.when)}",
            f"- **Then**: {outcome_text(then, policy.default_follow_up_days)}",
            f"- **Message**: {then.message.zh} / {then.message.en}",
            f"- **Source**: {rule.source}",
        ]
    out += ["", "## Schedules", "", "Recurring checks for the patients each condition selects.", ""]
    out += ["| schedule | when | task | check | source |", "|---|---|---|---|---|"]
    for schedule in pack.schedules:
        row = (
            f"`{schedule.id}`",
            readable(schedule.when),
            f"`{schedule.task.value}`",
            f"`{schedule.check.value}`" if schedule.check else "each prescription due for a refill",
            schedule.source,
        )
        out.append("| " + " | ".join(_cell(c) for c in row) + " |")
    out += _medication(pack)
    out += ["", "## Referrals", "", "| urgency | rank | task | follow-up task |", "|---|---|---|---|"]
    for urgency, referral in sorted(policy.referrals.items(), key=lambda item: item[1].rank):
        after = f"`{referral.follow_up_task.value}`" if referral.follow_up_task else "–"
        out.append(f"| {urgency.value} | {referral.rank} | `{referral.task.value}` | {after} |")
    out += [
        "",
        "## Task catalogue",
        "",
        "Due: anchor + offset. Time limit (时限): after the due time. Resolved by: the evidence that closes "
        "an open task without anyone closing it by hand.",
        "",
        "| task | priority | due | role | time limit | resolved by | source |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, spec in policy.tasks.items():
        cells = (
            f"`{kind.value}`",
            _priority(spec),
            _due(spec),
            spec.role.value,
            _hours(spec.time_limit_hours),
            _resolved_by(spec),
            spec.source,
        )
        out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    follow = policy.follow_through
    out += [
        "",
        "## Follow-through",
        "",
        "What the daily run (and the hourly run) does with tasks and patients that are not followed through.",
        "",
        f"- **Escalation**: an open task of a {follow.escalation.tier.value}-tier patient overdue "
        f"{follow.escalation.overdue_days} days or more goes to the `{follow.escalation.to}`. "
        f"Source: {follow.escalation.source}",
        f"- **`missed_3m`** (3个月未随访): no contact (a visit or a reading) for "
        f"{follow.missed_3m.no_contact_days} days or more. Source: {follow.missed_3m.source}",
        f"- **`lost_to_follow_up`** (失访): no contact for {follow.lost_to_follow_up.no_contact_days} days "
        f"or more. Source: {follow.lost_to_follow_up.source}",
        "- A patient seen again (a visit or a reading after the last contact a flag recorded) is no longer "
        "shown as flagged; the next daily run clears the flag.",
        f"- **Snooze**: a task is snoozed {follow.snooze.max_days} days at most. "
        f"Source: {follow.snooze.source}",
        "- **Hourly run**: issues "
        + ", ".join(f"`{k.value}`" for k in follow.hourly.kinds)
        + f" as they fall due; the daily run issues every kind. Source: {follow.hourly.source}",
        "",
        "## Sources",
        "",
        "| key | reference |",
        "|---|---|",
    ]
    out += [f"| {_cell(key)} | {_cell(text)} |" for key, text in pack.sources.items()]
    return "\n".join(out) + "\n"


def text(loaded: LoadedPack) -> str:
    """The rules and tasks one line each, for a terminal."""
    pack, policy = loaded.pack, loaded.pack.policy
    out = [f"{pack.id} {pack.version} (effective {pack.effective_from.isoformat()}, sha256 {loaded.sha256})"]
    for rule in _rules_by_tier(pack.rules):
        outcome = outcome_text(rule.then, policy.default_follow_up_days, md=False)
        out.append(f"{rule.tier.value:<6} {rule.id}: when {readable(rule.when, md=False)} => {outcome}")
    for schedule in pack.schedules:
        out.append(
            f"{'-':<6} {schedule.id}: when {readable(schedule.when, md=False)} => {schedule.task.value}"
        )
    for kind, spec in policy.tasks.items():
        out.append(
            f"task {kind.value}: priority {_priority(spec)}, due {_due(spec)}, {spec.role.value}, "
            f"within {_hours(spec.time_limit_hours)}, resolved by {_resolved_by(spec)}"
        )
    return "\n".join(out) + "\n"


def _medication(pack: RulePack) -> list[str]:
    """The pack's medication block (PATHWAY.md §7): groups, diuretics, windows and the ATC map."""
    table = pack.medication
    if table is None:
        return []
    out = ["", "## Medication", "", f"Source: {table.source}", ""]
    out += [
        f"- **{group.value}**: " + ", ".join(f"`{c.value}`" for c in classes)
        for group, classes in table.groups.items()
    ]
    out.append("- **diuretics**: " + ", ".join(f"`{c.value}`" for c in table.diuretics))
    if table.windows is not None:
        w = table.windows
        out += [
            "",
            f"Windows ({w.source}): supply lapse {w.lapse_days} d; medication known from a review within "
            f"{w.known_window_days} d; adherence within {w.adherence_window_days} d; adverse reactions "
            f"within "
            f"{w.adverse_window_days} d; statin run gap {w.statin_run_gap_days} d; refill horizon "
            f"{w.refill_horizon_days} d; supply at most {w.max_supply_days} d.",
            "",
            "Supply lapses watched: "
            + "; ".join(
                ", ".join(f"`{c.value}`" for c in sorted(table.watched(x)))
                + " for "
                + ", ".join(c.value for c in x.conditions)
                for x in w.supply_watch
            ),
        ]
    out += ["", "| ATC prefix | classes |", "|---|---|"]
    out += [
        f"| `{prefix}` | {', '.join(c.value for c in classes)} |" for prefix, classes in table.atc.items()
    ]
    return out
