"""Care tasks on every reassessment (PATHWAY.md §5): the work assessments call for, followed through
until it is done.

- :func:`sync_from_assessment` (every reassessment): one open task per (patient, kind, subject); a
  new firing updates the open task (reasons, rule ids; its due time only ever moves earlier: the
  first firing starts the clock), and evidence resolves it (a new encounter, reading or check, the
  referral loop moving, the assessment no longer calling for it — the pack says which, per kind).
  A need the team already closed by hand is not reopened until new evidence arrives.
- :func:`sync_from_assessments`: the same for a batch of patients, read and written together.
- :func:`referral_moved`: the referral loop moved; once no referral is open, its tasks resolve.

The GP team's actions are in :mod:`pathway.tasks.actions`, the scheduler's daily and hourly runs in
:mod:`pathway.tasks.issuing`. Every change is recorded as a task event (who, when, from → to).
Nothing here commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from pathway.clinical.clock import CLINIC_TZ
from pathway.clinical.policy import EVIDENCE_NO_LONGER_CALLED, EVIDENCE_REFERRAL
from pathway.store.tables import AssessmentRecord, Patient, Referral
from pathway.tasks import task_store
from pathway.tasks.status import ENGINE, TaskStatus, event
from pathway.tasks.task_store import OPEN, PatientTaskState, TaskRow

# Closed by hand with these, a need stays closed until new evidence (unreachable: tried again).
_HANDLED = [s.value for s in (TaskStatus.DONE, TaskStatus.REFUSED, TaskStatus.MOVED, TaskStatus.DECEASED)]
_HANDLED.append(TaskStatus.CANCELLED.value)


@dataclass(frozen=True)
class _Called:
    """A task as the assessment's JSON carries it."""

    kind: str
    subject: str
    due: datetime
    priority: int
    rule_id: str
    rule_ids: list[str]
    role: str
    time_limit: timedelta
    evidence: list[str]
    recheck_of: datetime | None

    @classmethod
    def of(cls, item: dict[str, Any]) -> _Called:
        due = datetime.fromisoformat(item["due"])
        recheck_of = item.get("recheck_of")
        return cls(
            kind=item["kind"],
            subject=item.get("subject") or "",
            due=due,
            priority=int(item["priority"]),
            rule_id=item["rule_id"],
            rule_ids=list(item["rule_ids"]),
            role=item["role"],
            time_limit=datetime.fromisoformat(item["time_limit_at"]) - due,
            evidence=list(item["evidence"]),
            recheck_of=datetime.fromisoformat(recheck_of) if recheck_of else None,
        )


@dataclass(frozen=True)
class TaskSync:
    """What one sync did, by (kind, subject)."""

    opened: list[tuple[str, str]]
    updated: list[tuple[str, str]]
    resolved: list[tuple[str, str]]


def sync_from_assessment(
    session: Session, patient: Patient, record: AssessmentRecord, now: datetime
) -> TaskSync:
    """Bring the patient's open tasks in line with a new assessment (one read, at most three writes)."""
    assert patient.id is not None
    state = task_store.patient_task_state(session, patient.id, patient.team_id, _HANDLED)
    writes = _Writes()
    done = _plan(patient, record, state, now, writes)
    _apply(session, writes, now)
    return done


def sync_from_assessments(
    session: Session, assessed: Sequence[tuple[Patient, AssessmentRecord]], now: datetime
) -> None:
    """:func:`sync_from_assessment` of a batch of patients, each with its new assessment, in three
    reads and at most three writes for the whole batch (the population re-tier)."""
    states = task_store.patient_task_states(
        session, [(p.id, p.team_id) for p, _ in assessed if p.id is not None], _HANDLED
    )
    writes = _Writes()
    for patient, record in assessed:
        assert patient.id is not None
        _plan(patient, record, states[patient.id], now, writes)
    _apply(session, writes, now)


@dataclass
class _Writes:
    """What syncs call for, written together: task updates, upserts and the events of both."""

    changes: list[dict[str, Any]] = field(default_factory=list)
    upserts: list[dict[str, Any]] = field(default_factory=list)
    # (patient, kind, subject) → (action, details) of each upserted task: its event once its id is known
    pending: dict[tuple[int, str, str], tuple[str, dict[str, Any]]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)


def _apply(session: Session, writes: _Writes, now: datetime) -> None:
    task_store.update_open_tasks(session, writes.changes)
    ids = task_store.upsert_many(session, writes.upserts)
    for key, (action, details) in writes.pending.items():
        writes.events.append(
            event(ids[key], now, ENGINE, action, None if action == "opened" else OPEN, OPEN, details=details)
        )
    task_store.add_events(session, writes.events)


def _plan(
    patient: Patient, record: AssessmentRecord, state: PatientTaskState, now: datetime, writes: _Writes
) -> TaskSync:
    """The writes that bring one patient's tasks (``state``) in line with its new assessment."""
    assert patient.id is not None
    result = record.result
    called = {(c.kind, c.subject): c for c in (_Called.of(item) for item in result.get("tasks", []))}
    seen = {key: datetime.fromisoformat(at) for key, at in (result.get("evidence") or {}).items()}
    zone: tzinfo = (
        ZoneInfo(state.team_timezone)
        if state.team_timezone
        else datetime.fromisoformat(result["as_of"]).tzinfo or CLINIC_TZ
    )
    still_open: dict[tuple[str, str], TaskRow] = {}
    resolved: list[tuple[str, str]] = []
    for row in state.open:
        key = (row.kind, row.subject)
        found = _resolving_evidence(row, called.get(key), seen, state.open_referral_since)
        if found is not None:
            note, details = found
            resolved.append(key)
            writes.changes.append(_change(row.id, TaskStatus.RESOLVED, row.tier, row.team_id, now))
            writes.events.append(
                event(row.id, now, ENGINE, "resolved", OPEN, TaskStatus.RESOLVED, note=note, details=details)
            )
            continue
        still_open[key] = row
        if key not in called and (row.tier, row.team_id) != (record.tier, patient.team_id):
            writes.changes.append(_change(row.id, TaskStatus.OPEN, record.tier, patient.team_id, now))
            details = {"tier": [row.tier, record.tier], "team_id": [row.team_id, patient.team_id]}
            writes.events.append(
                event(row.id, now, ENGINE, "updated", OPEN, TaskStatus.OPEN, details=details)
            )

    handled = {(t.kind, t.subject): t for t in state.handled}
    opened: list[tuple[str, str]] = []
    updated: list[tuple[str, str]] = []
    for key, task in called.items():
        current = still_open.get(key)
        if current is None:
            if _already_done(task, seen, state.open_referral_since, handled.get(key)):
                continue
            writes.upserts.append(_new_row(patient, record, task, zone, seen, now))
            opening = {"due_at": task.due.isoformat(), "rule_ids": task.rule_ids, "assessment_id": record.id}
            writes.pending[(patient.id, *key)] = ("opened", opening)
            opened.append(key)
            continue
        merged = _merge(current, task, patient, record, zone, now)
        if merged is not None:
            writes.upserts.append(merged[0])
            writes.pending[(patient.id, *key)] = ("updated", {**merged[1], "assessment_id": record.id})
            updated.append(key)
    return TaskSync(opened=opened, updated=updated, resolved=resolved)


def _latest(keys: Sequence[str], seen: dict[str, datetime]) -> datetime | None:
    moments = [seen[k] for k in keys if k in seen]
    return max(moments) if moments else None


def _resolving_evidence(
    row: TaskRow, called: _Called | None, seen: dict[str, datetime], open_referral_since: datetime | None
) -> tuple[str, dict[str, Any]] | None:
    """The evidence that resolves an open task (a note and details), or None.

    A reading up to the one a recheck still called for rechecks is not its recheck (a second crisis
    reading is not the recheck of the first, PATHWAY.md §2): the assessment has judged it already.
    """
    anchor = called.recheck_of if called is not None else None
    for key in row.evidence:
        if key == EVIDENCE_REFERRAL:
            if open_referral_since is None:
                return "the referral is no longer open (the loop moved)", {"evidence": key}
        elif key == EVIDENCE_NO_LONGER_CALLED:
            if called is None:
                return "the assessment no longer calls for it", {"evidence": key}
        else:
            at = seen.get(key)
            if (
                at is not None
                and (row.evidence_at is None or at > row.evidence_at)
                and (anchor is None or at > anchor)
            ):
                return f"new {key} at {at.isoformat()}", {"evidence": key, "at": at.isoformat()}
    return None


def _need_since(task: _Called, seen: dict[str, datetime]) -> datetime | None:
    """The latest evidence behind a task: of its own kinds (a screening: its check), or of any kind
    for a task that only ends when no longer called for (a data gap)."""
    own = [key for key in task.evidence if key != EVIDENCE_NO_LONGER_CALLED]
    if not own and EVIDENCE_NO_LONGER_CALLED in task.evidence:
        return max(seen.values(), default=None)
    return _latest(own, seen)


def _already_done(
    task: _Called, seen: dict[str, datetime], open_referral_since: datetime | None, handled: TaskRow | None
) -> bool:
    """Whether a task the assessment calls for is already satisfied, or closed by hand with no new
    evidence since (the team's decision stands until something new happens)."""
    if EVIDENCE_REFERRAL in task.evidence:
        if open_referral_since is None:
            return True  # the referral it calls for was accepted (or none is open)
        return (
            handled is not None and handled.closed_at is not None and handled.closed_at >= open_referral_since
        )
    # Evidence after the moment an anchored task counts from (a BP after the newest crisis reading)
    # already kept the assessment from calling for it: decided there, once (assessment._done_since).
    if handled is None:
        return False
    since = _need_since(task, seen)
    return since is None or (handled.evidence_at is not None and since <= handled.evidence_at)


def _change(
    task_id: int, status: TaskStatus, tier: str, team_id: int | None, now: datetime
) -> dict[str, Any]:
    closed = status is not TaskStatus.OPEN
    return {
        "b_id": task_id,
        "b_status": status.value,
        "b_tier": tier,
        "b_team_id": team_id,
        "b_now": now,
        "b_closed_at": now if closed else None,
    }


def _new_row(
    patient: Patient,
    record: AssessmentRecord,
    task: _Called,
    zone: tzinfo,
    seen: dict[str, datetime],
    now: datetime,
) -> dict[str, Any]:
    return {
        "patient_id": patient.id,
        "team_id": patient.team_id,
        "kind": task.kind,
        "subject": task.subject,
        "status": OPEN,
        "due_at": task.due,
        "due_date": task.due.astimezone(zone).date(),
        "issued_at": None,
        "overdue_at": None,
        "time_limit_at": task.due + task.time_limit,
        "priority": task.priority,
        "role": task.role,
        "assignee": None,
        "rule_id": task.rule_id,
        "rule_ids": task.rule_ids,
        "pack_id": record.pack_id,
        "pack_version": record.pack_version,
        "assessment_id": record.id,
        "tier": record.tier,
        "evidence": task.evidence,
        "evidence_at": _need_since(task, seen),
        "escalated_at": None,
        "snoozed_until": None,
        "snooze_reason": None,
        "outcome": None,
        "note": None,
        "created_at": now,
        "updated_at": now,
        "closed_at": None,
    }


def _merge(
    row: TaskRow, task: _Called, patient: Patient, record: AssessmentRecord, zone: tzinfo, now: datetime
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The open task updated by a new firing (its upsert row and what changed), or None if nothing did.

    Its due time only moves earlier, except a recheck's: that follows the newest reading it rechecks.
    """
    earlier = task.due < row.due_at or (task.recheck_of is not None and task.due != row.due_at)
    due = task.due if earlier else row.due_at
    values: dict[str, Any] = {
        "due_at": due,
        "priority": min(row.priority, task.priority),
        "rule_id": task.rule_id if earlier else row.rule_id,
        "rule_ids": task.rule_ids,
        "tier": record.tier,
        "team_id": patient.team_id,
        "role": task.role,
        "time_limit_at": due + task.time_limit,
        # What resolves it is the pack in force's word: a task opened under an earlier edition
        # takes the new edition's evidence with its next firing.
        "evidence": task.evidence,
    }
    before = {
        "due_at": row.due_at,
        "priority": row.priority,
        "rule_id": row.rule_id,
        "rule_ids": row.rule_ids,
        "tier": row.tier,
        "team_id": row.team_id,
        "role": row.role,
        "time_limit_at": row.time_limit_at,
        "evidence": row.evidence,
    }
    changed = {
        name: [_plain(before[name]), _plain(value)] for name, value in values.items() if before[name] != value
    }
    if not changed:
        return None
    upsert = _new_row(patient, record, task, zone, {}, now)
    upsert.update(values, due_date=due.astimezone(zone).date(), evidence_at=row.evidence_at)
    return upsert, changed


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def referral_moved(session: Session, referral: Referral, now: datetime) -> None:
    """The referral loop moved: resolve the patient's referral tasks once no referral is open."""
    state = task_store.patient_task_state(session, referral.patient_id, None, [])
    if state.open_referral_since is not None:
        return
    rows = [row for row in state.open if EVIDENCE_REFERRAL in row.evidence]
    task_store.update_open_tasks(
        session, [_change(r.id, TaskStatus.RESOLVED, r.tier, r.team_id, now) for r in rows]
    )
    note = f"referral #{referral.id} is {referral.status}"
    details = {"evidence": EVIDENCE_REFERRAL, "referral_id": referral.id, "referral_status": referral.status}
    task_store.add_events(
        session,
        [
            event(r.id, now, ENGINE, "resolved", OPEN, TaskStatus.RESOLVED, note=note, details=details)
            for r in rows
        ],
    )
