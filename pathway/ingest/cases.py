"""The case-file contract of ``pathway evaluate`` (shared/cases/README.md).

A case is one patient situation, an ``as_of`` moment and, optionally, the expected outcome.
Parsing validates every field and converts readings with the pack's units and plausibility, so a
bad file is one clear error naming the field.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pathway.clinical.assessment import Assessment
from pathway.clinical.clock import clinic_date
from pathway.clinical.errors import InvalidInput
from pathway.clinical.history import (
    CheckDone,
    ComplicationRecord,
    Encounter,
    Measurement,
    PatientHistory,
    PatientProfile,
    SymptomReport,
    check_patient,
    measure_incoming,
)
from pathway.clinical.medication import Adherence, MedicationClass, MedicationTable, Prescription
from pathway.clinical.parameters import Plausibility, Units
from pathway.clinical.tiers import ManagementLevel, ReferralUrgency, RiskTier, TaskKind
from pathway.clinical.vocabulary import (
    CareCheck,
    Complication,
    Condition,
    ReadingKind,
    ReadingSource,
    Sex,
    Symptom,
)
from pathway.ingest.inbound import Day, Instant


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CaseReading(_Strict):
    kind: ReadingKind
    value: Decimal | None = None
    systolic: Decimal | None = None
    diastolic: Decimal | None = None
    pulse: Decimal | None = None
    unit: str | None = None
    source: ReadingSource | None = None
    measured_at: Instant | None = None


class CaseEncounter(_Strict):
    at: Instant
    readings: list[CaseReading] = Field(default_factory=list)
    symptoms: list[Symptom] = Field(default_factory=list)
    medications_reviewed: bool = False
    adherence: Adherence | None = None
    adverse_reaction: bool | None = None


class CasePrescription(_Strict):
    """PATHWAY.md §7: classes and/or an ATC code (a combination names several classes)."""

    id: str | None = None
    classes: list[MedicationClass] = Field(default_factory=list)
    atc: str | None = None
    drug: str = Field(min_length=1)
    dose: str | None = None
    started_on: Day
    supply_days: int
    stopped_on: Day | None = None


class CaseSymptom(_Strict):
    code: Symptom
    at: Instant


class CaseComplication(_Strict):
    code: Complication
    onset: Day


class CaseCheck(_Strict):
    kind: CareCheck
    at: Instant


class CasePatient(_Strict):
    sex: Sex
    birth_date: Day
    conditions: list[Condition] = Field(default_factory=list)
    complications: list[CaseComplication] = Field(default_factory=list)
    smoker: bool = False
    pregnant: bool = False


class Expectation(_Strict):
    tier: RiskTier
    referral: ReferralUrgency | None
    follow_up_days: int
    level: ManagementLevel
    tasks_include: list[TaskKind] = Field(default_factory=list)


class CaseFile(BaseModel):
    """Unknown top-level keys (notes, authorship) are allowed; everything clinical is strict."""

    name: str = ""
    # The rule pack the case is written for (its expectation holds for that pack); default: the
    # default pack. ``pathway evaluate --pack`` overrides it.
    pack: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9-]*$")
    as_of: Instant
    patient: CasePatient
    encounters: list[CaseEncounter] = Field(default_factory=list)
    readings: list[CaseReading] = Field(default_factory=list)
    symptoms: list[CaseSymptom] = Field(default_factory=list)
    checks: list[CaseCheck] = Field(default_factory=list)
    prescriptions: list[CasePrescription] = Field(default_factory=list)
    expect: Expectation | None = None


def read_case(path: Path) -> CaseFile:
    """Parse a case file; raise :class:`InvalidInput` naming the first bad field."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise InvalidInput(f"cannot read {path}: {error.strerror}", "file") from error
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidInput(f"not valid JSON: {error.msg} at line {error.lineno}", "file") from error
    try:
        return CaseFile.model_validate_json(text)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "case"
        raise InvalidInput(first["msg"], field) from error


def case_history(
    case: CaseFile, units: Units, plausibility: Plausibility, medication: MedicationTable | None = None
) -> PatientHistory:
    """The canonical history of a case (replay semantics: no reading is rejected for being after
    as_of; a prescription dated after it is, like a birth date)."""

    def reading(
        item: CaseReading, field: str, source: ReadingSource | None, at: datetime | None
    ) -> Measurement:
        if source is None:
            raise InvalidInput("a reading outside an encounter needs a source", f"{field}.source")
        when = item.measured_at or at
        if when is None:
            raise InvalidInput("a reading outside an encounter needs measured_at", f"{field}.measured_at")
        return measure_incoming(
            item,
            source=source,
            at=when,
            units=units,
            plausibility=plausibility,
            received_at=None,
            field_prefix=field,
        )

    encounters = []
    for i, encounter in enumerate(case.encounters):
        readings = []
        for j, item in enumerate(encounter.readings):
            field = f"encounters.{i}.readings.{j}"
            if item.source not in (None, ReadingSource.CLINIC):
                raise InvalidInput("readings inside an encounter are clinic readings", f"{field}.source")
            readings.append(reading(item, field, ReadingSource.CLINIC, encounter.at))
        encounters.append(
            Encounter(
                at=encounter.at,
                readings=tuple(readings),
                symptoms=tuple(encounter.symptoms),
                medications_reviewed=encounter.medications_reviewed,
                adherence=encounter.adherence,
                adverse_reaction=encounter.adverse_reaction,
            )
        )
    loose = tuple(reading(item, f"readings.{i}", item.source, None) for i, item in enumerate(case.readings))
    patient = case.patient
    check_patient(
        patient.sex, patient.birth_date, patient.pregnant, clinic_date(case.as_of), prefix="patient."
    )
    profile = PatientProfile(
        sex=patient.sex,
        birth_date=patient.birth_date,
        conditions=frozenset(patient.conditions),
        complications=tuple(ComplicationRecord(c.code, c.onset) for c in patient.complications),
        smoker=patient.smoker,
        pregnant=patient.pregnant,
    )
    return PatientHistory(
        profile=profile,
        encounters=tuple(encounters),
        readings=loose,
        symptoms=tuple(SymptomReport(s.code, s.at) for s in case.symptoms),
        checks=tuple(CheckDone(c.kind, c.at) for c in case.checks),
        prescriptions=tuple(
            case_prescription(item, f"prescriptions.{i}", medication, clinic_date(case.as_of))
            for i, item in enumerate(case.prescriptions)
        ),
    )


def case_prescription(
    item: CasePrescription, field: str, medication: MedicationTable | None, on: date
) -> Prescription:
    """A validated prescription of a case file (PATHWAY.md §7), or an error naming the field."""
    if medication is None or medication.windows is None:
        raise InvalidInput("this rule pack knows no medication", field)
    classes = list(item.classes)
    if item.atc is not None:
        named = medication.classes_of_atc(item.atc)
        if named is None:
            raise InvalidInput(f"unknown ATC code {item.atc!r}", f"{field}.atc")
        classes += [c for c in named if c not in classes]
    if not classes:
        raise InvalidInput("a prescription needs classes or an ATC code", f"{field}.classes")
    if not 1 <= item.supply_days <= medication.windows.max_supply_days:
        raise InvalidInput(
            f"supply_days must be 1–{medication.windows.max_supply_days}", f"{field}.supply_days"
        )
    if item.started_on > on:
        raise InvalidInput(f"started_on {item.started_on} is after {on}", f"{field}.started_on")
    if item.stopped_on is not None:
        if item.stopped_on < item.started_on:
            raise InvalidInput("stopped_on is before started_on", f"{field}.stopped_on")
        if item.stopped_on > on:
            raise InvalidInput(f"stopped_on {item.stopped_on} is after {on}", f"{field}.stopped_on")
    return Prescription(
        classes=tuple(classes),
        drug=item.drug,
        started_on=item.started_on,
        supply_days=item.supply_days,
        dose=item.dose,
        stopped_on=item.stopped_on,
        source_id=item.id,
    )


def differences(expect: Expectation, result: Assessment) -> list[str]:
    """How ``result`` differs from ``expect`` (empty when the case passes)."""
    found = []
    if result.tier != expect.tier:
        found.append(f"tier {result.tier.value} (expected {expect.tier.value})")
    referral = result.referral.urgency if result.referral else None
    if referral != expect.referral:
        found.append(
            f"referral {referral and referral.value} (expected {expect.referral and expect.referral.value})"
        )
    if result.follow_up.interval_days != expect.follow_up_days:
        found.append(f"follow_up_days {result.follow_up.interval_days} (expected {expect.follow_up_days})")
    if result.level != expect.level:
        found.append(f"level {result.level.value} (expected {expect.level.value})")
    kinds = {t.kind for t in result.tasks}
    missing = [k.value for k in expect.tasks_include if k not in kinds]
    if missing:
        found.append(f"tasks missing {missing}")
    return found
