"""Use-cases: register a patient (create or update it by source system and external id), and find
the patient a request names. They never commit: the caller (a request, a job, a command) owns the
transaction.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session

from pathway.access import permissions
from pathway.clinical.clock import CLINIC_TZ
from pathway.clinical.errors import InvalidInput, PathwayError
from pathway.clinical.history import check_patient
from pathway.clinical.vocabulary import Complication, Condition
from pathway.ingest.inbound import ComplicationIn, PatientIn
from pathway.patients import patient_store
from pathway.store import db
from pathway.store.tables import Patient, PatientComplication


class UnknownPatient(PathwayError):
    code = "unknown-patient"
    status = 404


def upsert_patient(
    session: Session, data: PatientIn, now: datetime, tz: ZoneInfo = CLINIC_TZ
) -> tuple[Patient, bool]:
    """Create or update the patient of (source_system, external_id); whether it was created.

    ``enrolled_on`` (建档日期) is kept as sent (not after today in the team's time zone, else
    ``tz``; not before birth); a new patient sent without one is enrolled today, an update
    without one keeps it.
    """
    patient = patient_store.patient_by_external_id(session, data.source_system, data.external_id)
    created = patient is None
    team = permissions.team_by_code(session, data.team_code) if data.team_code else None
    today = now.astimezone(ZoneInfo(team.timezone) if team is not None else tz).date()
    check_patient(data.sex, data.birth_date, data.pregnant, today)
    if data.enrolled_on is not None:
        if data.enrolled_on > today:
            raise InvalidInput(f"enrolled_on must not be after today ({today})", "enrolled_on")
        if data.enrolled_on < data.birth_date:
            raise InvalidInput("enrolled_on must not be before birth_date", "enrolled_on")
    if patient is None:
        patient = Patient(
            source_system=data.source_system,
            external_id=data.external_id,
            sex=data.sex.value,
            birth_date=data.birth_date,
            created_at=now,
            updated_at=now,
            enrolled_on=today,
        )
    if data.enrolled_on is not None:
        patient.enrolled_on = data.enrolled_on
    patient.name = data.name
    patient.phone = data.phone
    patient.team_id = team.id if team is not None else None
    patient.sex = data.sex.value
    patient.birth_date = data.birth_date
    patient.conditions = sorted(c.value for c in data.conditions)
    patient.smoker = data.smoker
    patient.pregnant = data.pregnant
    patient.updated_at = now
    db.add(session, patient)
    assert patient.id is not None
    complications = [
        PatientComplication(patient_id=patient.id, code=c.code.value, onset=c.onset)
        for c in data.complications
    ]
    patient_store.replace_complications(session, patient.id, complications)
    return patient, created


def require_patient(session: Session, patient_id: int, *, for_update: bool = False) -> Patient:
    patient = patient_store.patient_by_id(session, patient_id, for_update=for_update)
    if patient is None:
        raise UnknownPatient(f"no patient with id {patient_id}", "patient_id")
    return patient


def patient_by_identifier(session: Session, source_system: str, external_id: str) -> Patient:
    """The patient an outside system knows by (its system, its id), e.g. a FHIR identifier or a CDS
    Hooks request; none is 404 ``unknown-patient``, as for an id."""
    patient = patient_store.patient_by_external_id(session, source_system, external_id)
    if patient is None:
        raise UnknownPatient("no patient with that identifier", "identifier")
    return patient


def register_demographics(
    session: Session, data: PatientIn, now: datetime, tz: ZoneInfo = CLINIC_TZ
) -> tuple[Patient, str]:
    """Create or update the patient of (source_system, external_id) from who they are (name, phone,
    sex, birth date, team: what an EHR's Patient resource says), keeping the conditions,
    complications, smoking and pregnancy stored for a known patient (those arrive as Conditions).

    The outcome: ``created``, ``amended``, or ``duplicate`` when nothing it says changed.
    """
    patient = patient_store.patient_by_external_id(session, data.source_system, data.external_id)
    if patient is None:
        created, _ = upsert_patient(session, data, now, tz)
        return created, "created"
    assert patient.id is not None
    team = permissions.team_by_code(session, data.team_code) if data.team_code else None
    said = (data.name, data.phone, team.id if team else None, data.sex.value, data.birth_date)
    if said == (patient.name, patient.phone, patient.team_id, patient.sex, patient.birth_date):
        return patient, "duplicate"
    kept = data.model_copy(
        update={
            "conditions": [Condition(c) for c in patient.conditions],
            "complications": [
                ComplicationIn(code=Complication(c.code), onset=c.onset)
                for c in patient_store.complications_of(session, patient.id)
            ],
            "smoker": patient.smoker,
            "pregnant": patient.pregnant,
        }
    )
    updated, _ = upsert_patient(session, kept, now, tz)
    return updated, "amended"


def record_diagnosis(
    session: Session,
    patient: Patient,
    diagnosis: Condition | Complication,
    onset: date | None,
    *,
    present: bool,
    now: datetime,
) -> str:
    """Add (``present``) or remove one condition, or one complication with its onset, of the patient.

    The outcome: ``created``; ``amended`` (a complication's onset changed); ``retracted`` (removed);
    ``duplicate`` when the patient's record already says so.
    """
    assert patient.id is not None
    if isinstance(diagnosis, Condition):
        conditions = set(patient.conditions)
        if (diagnosis.value in conditions) == present:
            return "duplicate"
        patient.conditions = sorted(conditions | {diagnosis.value} if present else conditions - {diagnosis})
        outcome = "created" if present else "retracted"
    else:
        stored = {c.code: c.onset for c in patient_store.complications_of(session, patient.id)}
        if (present and stored.get(diagnosis.value) == onset) or (not present and diagnosis not in stored):
            return "duplicate"
        outcome = "retracted" if not present else "amended" if diagnosis.value in stored else "created"
        if present:
            assert onset is not None
            stored[diagnosis.value] = onset
        else:
            del stored[diagnosis.value]
        patient_store.replace_complications(
            session,
            patient.id,
            [PatientComplication(patient_id=patient.id, code=c, onset=d) for c, d in sorted(stored.items())],
        )
    patient.updated_at = now
    db.add(session, patient)
    return outcome
