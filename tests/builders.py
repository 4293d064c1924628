"""Deterministic makers of patient histories with clinical presets (no random values).

Times are given relative to ``AS_OF`` so a boundary reads as what it is: ``hours_before(24)``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal

from pathway.clinical.clock import CLINIC_TZ
from pathway.clinical.history import (
    CheckDone,
    ComplicationRecord,
    Encounter,
    Measurement,
    PatientHistory,
    PatientProfile,
    SymptomReport,
)
from pathway.clinical.vocabulary import (
    CareCheck,
    Complication,
    Condition,
    ReadingKind,
    ReadingSource,
    Sex,
    Symptom,
)

AS_OF = datetime(2026, 3, 1, 9, 0, tzinfo=CLINIC_TZ)


def days_before(days: float, at: datetime = AS_OF) -> datetime:
    return at - timedelta(days=days)


def hours_before(hours: float, at: datetime = AS_OF) -> datetime:
    return at - timedelta(hours=hours)


def born_years_before(years: int, on: datetime = AS_OF) -> date:
    """A birth date making the patient exactly ``years`` old on the AS_OF date."""
    day = on.date()
    return day.replace(year=day.year - years)


def bp(
    systolic: float, diastolic: float, at: datetime = AS_OF, source: ReadingSource = ReadingSource.CLINIC
) -> Measurement:
    return Measurement(
        kind=ReadingKind.BP,
        source=source,
        at=at,
        systolic=Decimal(str(systolic)),
        diastolic=Decimal(str(diastolic)),
    )


def lab(
    kind: ReadingKind, value: float, at: datetime = AS_OF, source: ReadingSource = ReadingSource.LAB
) -> Measurement:
    return Measurement(kind=kind, source=source, at=at, value=Decimal(str(value)))


def glucose(
    value: float,
    at: datetime = AS_OF,
    source: ReadingSource = ReadingSource.CLINIC,
    kind: ReadingKind = ReadingKind.FPG,
) -> Measurement:
    return lab(kind, value, at, source)


def visit(at: datetime, *readings: Measurement, symptoms: tuple[Symptom, ...] = ()) -> Encounter:
    """A clinic visit at ``at``; its readings are taken at the visit (their own times are replaced)."""
    return Encounter(at=at, readings=tuple(replace(r, at=at) for r in readings), symptoms=symptoms)


def patient(
    *conditions: Condition,
    age: int = 60,
    sex: Sex = Sex.MALE,
    complications: tuple[tuple[Complication, date], ...] = (),
    smoker: bool = False,
    pregnant: bool = False,
) -> PatientProfile:
    return PatientProfile(
        sex=sex,
        birth_date=born_years_before(age),
        conditions=frozenset(conditions),
        complications=tuple(ComplicationRecord(code, onset) for code, onset in complications),
        smoker=smoker,
        pregnant=pregnant,
    )


def history(
    profile: PatientProfile,
    encounters: tuple[Encounter, ...] = (),
    readings: tuple[Measurement, ...] = (),
    symptoms: tuple[tuple[Symptom, datetime], ...] = (),
    checks: tuple[tuple[CareCheck, datetime], ...] = (),
) -> PatientHistory:
    return PatientHistory(
        profile=profile,
        encounters=encounters,
        readings=readings,
        symptoms=tuple(SymptomReport(code, at) for code, at in symptoms),
        checks=tuple(CheckDone(kind, at) for kind, at in checks),
    )


# --- Clinical presets -------------------------------------------------------------------------


def controlled_hypertensive(age: int = 60) -> PatientHistory:
    """A hypertensive at target (128/78) seen 10 days ago: blue."""
    return history(
        patient(Condition.HYPERTENSION, age=age), encounters=(visit(days_before(10), bp(128, 78)),)
    )


def controlled_diabetic(age: int = 60) -> PatientHistory:
    """A diabetic with FPG 6.2 ten days ago: blue."""
    return history(patient(Condition.DIABETES, age=age), encounters=(visit(days_before(10), glucose(6.2)),))


def bp_crisis_at_clinic(systolic: float = 186, diastolic: float = 104) -> PatientHistory:
    return history(
        patient(Condition.HYPERTENSION), encounters=(visit(hours_before(1), bp(systolic, diastolic)),)
    )
