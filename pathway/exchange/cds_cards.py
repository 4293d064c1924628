"""CDS Hooks 2.0 cards for ``patient-view``: what the pathway says of a patient, shown inside the
EHR's own screen — the tier with its reasons and their sources, the referral with its urgency, the
open tasks and the medication step. Pure: a :class:`~pathway.exchange.readout.PatientView` in,
the cards' JSON out.
"""

from __future__ import annotations

import uuid
from typing import Any

from pathway.exchange.readout import PatientView

SERVICE_ID = "sangao-pathway"
INDICATOR_OF_TIER = {"red": "critical", "yellow": "warning", "blue": "info"}
INDICATOR_OF_URGENCY = {"emergency": "critical", "urgent": "warning", "routine": "info"}
MEDICATION_TASK = "medication_review"
URGENT_PRIORITY = 2
"""Open tasks of this priority or more urgent (1 is the most) make the tasks card a warning."""


def discovery() -> dict[str, Any]:
    """The discovery document: one service, on ``patient-view``, needing no prefetch."""
    return {
        "services": [
            {
                "hook": "patient-view",
                "id": SERVICE_ID,
                "title": "三高共管 care pathway",
                "description": "The patient's tier (red / yellow / blue) with its reasons and sources, the "
                "referral and its urgency, the open tasks and the medication step.",
                "usageRequirements": "An API key of the pathway (ehr or team role) as the bearer token.",
            }
        ]
    }


def cards(view: PatientView, summary_length: int) -> list[dict[str, Any]]:
    """The cards, most important first: tier, referral, medication step(s), open tasks; each
    summary shorter than ``summary_length`` (the CDS Hooks limit, given by the API)."""

    def _summary(text: str) -> str:
        return text if len(text) < summary_length else text[: summary_length - 2] + "…"

    record = view.assessment
    source = {
        "label": f"三高共管 pathway {record.pack_id} {record.pack_version}",
        "topic": {"code": record.tier},
    }
    reasons: list[dict[str, Any]] = record.result.get("reasons", [])

    def card(kind: str, summary: str, indicator: str, detail: str) -> dict[str, Any]:
        return {
            "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{SERVICE_ID}/{record.id}/{kind}")),
            "summary": _summary(summary),
            "indicator": indicator,
            "detail": detail,
            "source": source,
        }

    lines = [
        f"- `{r['rule_id']}` {r.get('message_en') or r['message']} ({r['message']}) — *source:* {r['source']}"
        for r in reasons
    ] or ["- no rule fired: routine management"]
    found = [
        card(
            "tier",
            f"三高共管 tier {record.tier.upper()} (level {record.level}), "
            f"follow-up by {record.follow_up_due}",
            INDICATOR_OF_TIER.get(record.tier, "info"),
            f"**Reasons** (pack {record.pack_id} {record.pack_version})\n\n" + "\n".join(lines),
        )
    ]
    if view.referral is not None:
        referral = view.referral
        found.append(
            card(
                "referral",
                f"Referral {referral.urgency} ({referral.status}): {referral.reason or referral.rule_id}",
                INDICATOR_OF_URGENCY.get(referral.urgency, "info"),
                f"**{referral.urgency}** referral, {referral.status} since "
                f"{referral.created_at.date()} (rule `{referral.rule_id}`, pack version "
                f"{referral.pack_version})\n\n{referral.reason or ''}",
            )
        )
    by_rule = {r["rule_id"]: r for r in reasons}
    steps = [t for t in view.open_tasks if t.kind == MEDICATION_TASK]
    for n, step in enumerate(steps):
        reason = by_rule.get(step.rule_id)
        said = (reason.get("message_en") or reason["message"]) if reason else step.kind
        found.append(
            card(
                f"medication-{n}",
                f"Medication step: {said}",
                "warning",
                f"{reason['message'] if reason else ''}\n\nrule `{step.rule_id}`, due {step.due_date}"
                + (f" — *source:* {reason['source']}" if reason else ""),
            )
        )
    if view.open_tasks:
        kinds = ", ".join(dict.fromkeys(t.kind for t in view.open_tasks))
        urgent = any(t.priority <= URGENT_PRIORITY for t in view.open_tasks)
        found.append(
            card(
                "tasks",
                f"{len(view.open_tasks)} open task(s): {kinds}",
                "warning" if urgent else "info",
                "\n".join(
                    f"- {t.kind} {t.subject}".rstrip()
                    + f", due {t.due_date} (priority {t.priority}, {t.role})"
                    for t in view.open_tasks
                ),
            )
        )
    return found
