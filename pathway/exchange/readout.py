"""The read-out's use-cases: a page of a patient's readings or of a team's tasks, and what a CDS
card shows of a patient, read through the owning packages' use-cases (no commit: the request owns
the transaction, and audits the access before it calls these).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from sqlmodel import Session

from pathway.clinical.clock import Clock
from pathway.clinical.vocabulary import ReadingKind
from pathway.exchange import readout_store
from pathway.exchange.fhir_resources import TASK_STATUS
from pathway.exchange.fhir_search import Page
from pathway.ingest.fhir import BP_PANEL, DIASTOLIC, SINGLE_VALUE_CODES, SYSTOLIC
from pathway.patients import reassessment
from pathway.patients.reassessment import PathwayConfig
from pathway.referrals import referral_flow
from pathway.store.tables import AssessmentRecord, Patient, Reading, Referral
from pathway.store.work_tables import CareTask
from pathway.tasks import patient_tasks

T = TypeVar("T")

# LOINC code → reading kind, as the ingest side maps them (a BP by its panel or either component).
KIND_OF_CODE: dict[str, ReadingKind] = {
    **SINGLE_VALUE_CODES,
    BP_PANEL: ReadingKind.BP,
    SYSTOLIC: ReadingKind.BP,
    DIASTOLIC: ReadingKind.BP,
}
# FHIR Task.status → our task statuses it stands for.
TASK_STATUSES_OF: dict[str, list[str]] = {}
for _ours, _theirs in TASK_STATUS.items():
    TASK_STATUSES_OF.setdefault(_theirs, []).append(_ours)


@dataclass(frozen=True)
class Found(Generic[T]):
    """One page of rows, and the (instant, id) to resume after if more follow."""

    rows: list[T]
    resume_after: tuple[datetime, int] | None


def observations(
    session: Session,
    patient_id: int,
    codes: set[str] | None,
    bounds: Sequence[readout_store.Bound],
    page: Page,
) -> Found[Reading]:
    """The patient's readings in force, by measured time then id (``codes``: LOINC codes, any of
    them; a code we do not map matches nothing)."""
    kinds = None if codes is None else sorted({KIND_OF_CODE[c].value for c in codes if c in KIND_OF_CODE})
    rows = list(readout_store.readings_page(session, patient_id, kinds, bounds, page.after, page.count + 1))
    more = len(rows) > page.count
    rows = rows[: page.count]
    return Found(rows, (rows[-1].measured_at, _id(rows[-1].id)) if more else None)


def team_tasks(session: Session, team_id: int, statuses: set[str] | None, page: Page) -> Found[CareTask]:
    """The team's tasks, by due time then id (``statuses``: FHIR Task statuses, any of them)."""
    ours = None if statuses is None else sorted(s for f in statuses for s in TASK_STATUSES_OF.get(f, []))
    rows = list(readout_store.team_tasks_page(session, team_id, ours, page.after, page.count + 1))
    more = len(rows) > page.count
    rows = rows[: page.count]
    return Found(rows, (rows[-1].due_at, _id(rows[-1].id)) if more else None)


def _id(row_id: int | None) -> int:
    assert row_id is not None
    return row_id


def referrals(session: Session, patient_id: int) -> list[Referral]:
    """Every referral of the patient, oldest first (a stable order: created, then id)."""
    return sorted(referral_flow.referrals_of(session, patient_id), key=lambda r: (r.created_at, _id(r.id)))


@dataclass(frozen=True)
class PatientView:
    """What the pathway says of a patient now: the current assessment, the active referral, the
    open tasks (most urgent first)."""

    patient: Patient
    assessment: AssessmentRecord
    referral: Referral | None
    open_tasks: list[CareTask]


def patient_view(session: Session, patient: Patient, config: PathwayConfig, clock: Clock) -> PatientView:
    assert patient.id is not None
    record = reassessment.current_assessment(session, patient, config, clock)
    active = [r for r in referral_flow.referrals_of(session, patient.id) if r.status in referral_flow.ACTIVE]
    return PatientView(
        patient=patient,
        assessment=record,
        referral=active[0] if active else None,
        open_tasks=list(patient_tasks.open_tasks_of(session, patient.id)),
    )
