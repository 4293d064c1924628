"""The population re-tier (issue #18): every managed patient reassessed under the pack in force,
in batches, after a pack change — so that a new edition reaches every patient at once, not only
those for whom something new arrives.

A batch is one transaction: the next managed patients after the cursor (in id order) are locked
(``SKIP LOCKED``: one being written to is left to that write, which assesses it under the pack in
force), the newest assessment of each is read, and each one not already made under this pack (id,
version and file) is reassessed — the assessment stored and its tasks synced as after any
reassessment, the batch's histories read and its assessments, events and tasks written together
(:func:`pathway.patients.reassessment.reassess_many`). The caller records the progress (the cursor
and the counts) in the same transaction before it commits, so a run killed mid-batch loses that
batch only and goes on from the cursor;
and since a patient already assessed under the pack is never assessed again, two runs racing, or a
run repeated, assess each patient once for the same change.

Never commits: the job or the command owns the transaction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session

from pathway.patients import reassessment, retier_store
from pathway.patients.reassessment import PathwayConfig
from pathway.runs import claims
from pathway.store.tables import Patient


@dataclass
class RetierProgress:
    """Where a re-tier run stands; kept in its ``scheduler_run.details`` (JSON) after every batch."""

    pack: str = ""  # "<id> <version> <sha256>": the pack the run assesses under
    cursor: int = 0  # the last patient id done
    total: int = 0  # managed patients when the run started (of this run's share)
    seen: int = 0
    assessed: int = 0
    already_current: int = 0  # the newest assessment was made under this pack already
    busy: int = 0  # being written to: that write assesses them under the pack in force
    deferred: int = 0  # the engine failed: the patient awaits a reassessment (the next read or run)
    tier_changes: dict[str, int] = field(default_factory=dict)  # "yellow→red": how many
    finished: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(cls, details: dict[str, Any]) -> RetierProgress:
        known = {name: details[name] for name in cls.__dataclass_fields__ if name in details}
        return cls(**known)


def pack_key(config: PathwayConfig) -> str:
    return f"{config.pack.id} {config.pack.version} {config.pack.sha256}"


def run_name(config: PathwayConfig, part: int = 0, parts: int = 1) -> str:
    """The claimed run (``scheduler_run.job``) of this edition's re-tier, or of one share of it."""
    job = f"retier {config.pack.id} {config.pack.version} {config.pack.sha256[:12]}"
    return job if parts == 1 else f"{job} part {part + 1}/{parts}"


@dataclass(frozen=True)
class EditionStatus:
    """How far the re-tier of the pack in force has come (the dashboard's card): its runs summed —
    the whole run, or the shares of ``pathway packs retier --workers`` and the whole run after them."""

    seen: int
    total: int
    assessed: int
    tier_changes: dict[str, int]
    finished: bool
    failed: str | None  # the error of an unfinished run that failed (it goes on when run again)
    updated_at: datetime


def edition_status(session: Session, config: PathwayConfig) -> EditionStatus | None:
    """The re-tier of the pack in force so far; None if it never started."""
    runs = claims.runs(session, run_name(config))
    if not runs:
        return None
    whole = [r for r in runs if r.job == run_name(config)]
    shares = [r for r in runs if r.job != run_name(config)]
    every = [RetierProgress.of(r.details) for r in runs]
    counted = [RetierProgress.of(r.details) for r in (shares or whole)]  # the population, once
    changes: dict[str, int] = {}
    for done in every:
        for change, count in done.tier_changes.items():
            changes[change] = changes.get(change, 0) + count
    return EditionStatus(
        seen=sum(p.seen for p in counted),
        total=sum(p.total for p in counted),
        assessed=sum(p.assessed for p in every),
        tier_changes=dict(sorted(changes.items())),
        finished=any(r.finished_at is not None for r in whole),
        failed=next((r.error for r in runs if r.finished_at is None and r.error), None),
        updated_at=max(r.finished_at or r.started_at for r in runs),
    )


def start(session: Session, config: PathwayConfig, parts: int = 1) -> RetierProgress:
    """A new run's progress: nothing done yet, the population counted (for the progress shown)."""
    total = retier_store.managed_patient_count(session)
    share = total if parts == 1 else -(-total // parts)  # an estimate: ids are not evenly spread
    return RetierProgress(pack=pack_key(config), total=share)


def retier_batch(
    session: Session,
    config: PathwayConfig,
    now: datetime,
    progress: RetierProgress,
    *,
    limit: int,
    part: int = 0,
    parts: int = 1,
) -> bool:
    """Reassess the next batch of the run (``progress`` is updated in place); False once there is
    none left (the run is then ``finished``). ``part``/``parts`` split the population by id modulo
    ``parts``, one share a process."""
    ids = retier_store.managed_patients_after(session, progress.cursor, limit, part, parts)
    if not ids:
        progress.finished = True
        return False
    patients = retier_store.lock_patients_if_free(session, ids)
    newest = retier_store.newest_assessments(session, [p.id for p in patients if p.id is not None])
    progress.seen += len(ids)
    progress.busy += len(ids) - len(patients)
    key = (config.pack.id, config.pack.version, config.pack.sha256)
    due: list[Patient] = []
    for patient in patients:
        assert patient.id is not None
        before = newest.get(patient.id)
        if before is not None and (before.pack_id, before.pack_version, before.pack_sha256) == key:
            progress.already_current += 1
        else:
            due.append(patient)
    previous = {i: (n.tier, n.referral_urgency) for i, n in newest.items()}
    for patient_id, record in reassessment.reassess_many(session, due, config, now, previous).items():
        before = newest.get(patient_id)
        if record is None:
            progress.deferred += 1
            continue
        progress.assessed += 1
        if before is not None and before.tier != record.tier:
            change = f"{before.tier}→{record.tier}"
            progress.tier_changes[change] = progress.tier_changes.get(change, 0) + 1
    progress.cursor = ids[-1]
    return True
