"""What the team sees of a patient's medication (PATHWAY.md §7): the prescriptions in use, by
medication group, each with its supply end, the days left and its supply state under the pack's
lapse window; and the visits' medication answers over time.

Reads only (nothing here writes or commits). The supply state is the rules' reading of it: a supply
that ended no more than the pack's ``lapse_days`` ago still counts as taken (``ended``, the case of
``med.supply.lapsed``); one that ended longer ago counts as not taken (``lapsed``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from sqlmodel import Session

from pathway.clinical.clock import clinic_date
from pathway.clinical.medication import MedicationClass, MedicationGroup
from pathway.ingest import record_store
from pathway.ingest.prescribing import current_prescriptions, medication_table
from pathway.patients.reassessment import PathwayConfig
from pathway.store.tables import Patient, PrescriptionRecord

SupplyState = Literal["supplied", "ended", "lapsed"]
ANSWERS_SHOWN = 20
"""The newest visits with medication answers the patient page lists."""


@dataclass(frozen=True)
class MedicationLine:
    """One prescription as the team sees it on a day."""

    prescription: PrescriptionRecord
    classes: tuple[MedicationClass, ...]
    supply_end: date
    days_left: int  # negative: the supply ended that many days ago
    state: SupplyState


@dataclass(frozen=True)
class MedicationAnswer:
    """What one visit recorded of the medication."""

    encounter_id: int
    at: datetime
    reviewed: bool
    adherence: str | None
    adverse_reaction: bool | None
    adverse_reaction_text: str | None


def medication_in_use(
    session: Session, patient: Patient, *, config: PathwayConfig, now: datetime
) -> dict[MedicationGroup, list[MedicationLine]]:
    """The patient's prescriptions in use today, by group (in the pack's group order; a
    combination pill under each group it belongs to), soonest supply end first.

    Stopped prescriptions (``stopped_on`` by today) are not in use. A supply that has ended is shown
    (``ended`` or ``lapsed``) unless a later-started prescription of one of its classes renewed it.
    """
    table = medication_table(config)
    lapse = timedelta(days=table.windows.lapse_days) if table.windows is not None else None
    today = clinic_date(now, config.tz)
    rows = [
        row
        for row in current_prescriptions(session, patient, config=config, now=now, everything=True)
        if (row.stopped_on is None or row.stopped_on > today) and row.started_on <= today
    ]
    known = set(MedicationClass)
    lines: dict[MedicationGroup, list[MedicationLine]] = {group: [] for group in table.groups}
    for row in rows:
        classes = tuple(MedicationClass(c) for c in row.classes if c in known)
        supply_end = row.started_on + timedelta(days=row.supply_days)
        renewed = any(
            other.started_on > row.started_on and set(other.classes) & set(row.classes) for other in rows
        )
        if supply_end < today and renewed:
            continue
        if supply_end >= today:
            state: SupplyState = "supplied"
        elif lapse is None or supply_end + lapse >= today:
            state = "ended"
        else:
            state = "lapsed"
        line = MedicationLine(row, classes, supply_end, (supply_end - today).days, state)
        for group in dict.fromkeys(table.group_of(c) for c in classes):
            lines[group].append(line)
    return {
        group: sorted(found, key=lambda line: (line.supply_end, line.prescription.drug))
        for group, found in lines.items()
        if found
    }


def medication_answers(
    session: Session, patient: Patient, limit: int = ANSWERS_SHOWN
) -> list[MedicationAnswer]:
    """The newest visits that recorded the medication reviewed, an adherence or an adverse-reaction
    answer, newest first."""
    assert patient.id is not None
    return [
        MedicationAnswer(
            encounter_id=row.id or 0,
            at=row.at,
            reviewed=row.medications_reviewed,
            adherence=row.adherence,
            adverse_reaction=row.adverse_reaction,
            adverse_reaction_text=row.adverse_reaction_text,
        )
        for row in record_store.medication_answers(session, patient.id, limit)
    ]
