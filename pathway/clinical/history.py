"""A patient's history as the snapshot builder sees it: canonical, validated, time-stamped.

Raw input (a case file, an API request) is turned into these values by :func:`measure`, which
converts units and checks plausibility with the pack's tables, so everything here is trusted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Protocol

from pathway.clinical.errors import FutureTimestamp, InvalidInput
from pathway.clinical.medication import Adherence, Prescription
from pathway.clinical.parameters import Plausibility, Units
from pathway.clinical.units import check_plausible, to_canonical
from pathway.clinical.vocabulary import (
    CareCheck,
    Complication,
    Condition,
    ReadingKind,
    ReadingSource,
    Sex,
    Symptom,
)


@dataclass(frozen=True, slots=True)
class Measurement:
    """One reading in canonical units (``value`` for single-valued kinds, systolic/diastolic for BP).

    ``received`` keeps the numbers exactly as they arrived, in ``unit_received`` (PATHWAY.md §1:
    the stored reading keeps the value and unit as received beside the canonical value).
    """

    kind: ReadingKind
    source: ReadingSource
    at: datetime
    value: Decimal | None = None
    systolic: Decimal | None = None
    diastolic: Decimal | None = None
    pulse: Decimal | None = None
    unit_received: str | None = None
    received: tuple[Decimal, ...] = ()


@dataclass(frozen=True, slots=True)
class Encounter:
    """A clinic visit: its clinic readings and the symptoms reported there; what it recorded of the
    medication (PATHWAY.md §7): reviewed or not, adherence, an adverse reaction (None: not asked)."""

    at: datetime
    readings: tuple[Measurement, ...] = ()
    symptoms: tuple[Symptom, ...] = ()
    medications_reviewed: bool = False
    adherence: Adherence | None = None
    adverse_reaction: bool | None = None


@dataclass(frozen=True, slots=True)
class SymptomReport:
    code: Symptom
    at: datetime


@dataclass(frozen=True, slots=True)
class ComplicationRecord:
    code: Complication
    onset: date


@dataclass(frozen=True, slots=True)
class CheckDone:
    """A scheduled examination recorded as done (annual check, fundus, foot, ECG…)."""

    kind: CareCheck
    at: datetime


@dataclass(frozen=True, slots=True)
class PatientProfile:
    sex: Sex
    birth_date: date
    conditions: frozenset[Condition] = frozenset()
    complications: tuple[ComplicationRecord, ...] = ()
    smoker: bool = False
    pregnant: bool = False


def check_patient(sex: Sex, birth_date: date, pregnant: bool, on: date, *, prefix: str = "") -> None:
    """Reject patient facts that cannot be true on ``on`` (PATHWAY.md §1): a birth date after it,
    ``pregnant`` for a male patient. ``prefix`` leads the field names (``patient.`` in a case file)."""
    if birth_date > on:
        raise InvalidInput(f"birth_date {birth_date} is after {on}", f"{prefix}birth_date")
    if pregnant and sex is Sex.MALE:
        raise InvalidInput("a patient whose sex is male cannot be pregnant", f"{prefix}pregnant")


@dataclass(frozen=True, slots=True)
class PatientHistory:
    profile: PatientProfile
    encounters: tuple[Encounter, ...] = ()
    readings: tuple[Measurement, ...] = ()
    symptoms: tuple[SymptomReport, ...] = ()
    checks: tuple[CheckDone, ...] = field(default=())
    prescriptions: tuple[Prescription, ...] = ()


class IncomingReading(Protocol):
    """Any input shape of one reading (API request, visit reading, case file)."""

    @property
    def kind(self) -> ReadingKind: ...
    @property
    def value(self) -> Decimal | None: ...
    @property
    def systolic(self) -> Decimal | None: ...
    @property
    def diastolic(self) -> Decimal | None: ...
    @property
    def pulse(self) -> Decimal | None: ...
    @property
    def unit(self) -> str | None: ...


def measure_incoming(
    item: IncomingReading,
    *,
    source: ReadingSource,
    at: datetime,
    units: Units,
    plausibility: Plausibility,
    received_at: datetime | None,
    field_prefix: str,
) -> Measurement:
    """:func:`measure` of one incoming reading, whatever shape it came in."""
    return measure(
        kind=item.kind,
        source=source,
        at=at,
        unit=item.unit,
        value=item.value,
        systolic=item.systolic,
        diastolic=item.diastolic,
        pulse=item.pulse,
        units=units,
        plausibility=plausibility,
        received_at=received_at,
        field_prefix=field_prefix,
    )


def measure(
    *,
    kind: ReadingKind,
    source: ReadingSource,
    at: datetime,
    unit: str | None,
    value: Decimal | None = None,
    systolic: Decimal | None = None,
    diastolic: Decimal | None = None,
    pulse: Decimal | None = None,
    units: Units,
    plausibility: Plausibility,
    received_at: datetime | None,
    field_prefix: str,
) -> Measurement:
    """A validated canonical :class:`Measurement`, or an error naming the offending field.

    ``received_at`` is when the reading arrived (the clock of the caller); a reading measured more
    than the pack's tolerance after it is rejected. Replays (``pathway evaluate``) pass ``None``:
    readings after ``as_of`` are then simply ignored by the snapshot.
    """
    if at.tzinfo is None:
        raise InvalidInput("timestamp needs a UTC offset", f"{field_prefix}.measured_at")
    if received_at is not None and at - received_at > timedelta(minutes=plausibility.max_future_minutes):
        raise FutureTimestamp(
            f"measured at {at.isoformat()}, more than {plausibility.max_future_minutes} minutes "
            f"after {received_at.isoformat()}",
            f"{field_prefix}.measured_at",
        )
    if kind is ReadingKind.BP:
        if systolic is None or diastolic is None:
            missing = "systolic" if systolic is None else "diastolic"
            raise InvalidInput("a bp reading needs systolic and diastolic", f"{field_prefix}.{missing}")
        if value is not None:
            raise InvalidInput("a bp reading has systolic/diastolic, not value", f"{field_prefix}.value")
        unit_field = f"{field_prefix}.unit"
        canonical = {
            "systolic": to_canonical(kind, systolic, unit, units, unit_field),
            "diastolic": to_canonical(kind, diastolic, unit, units, unit_field),
        }
        if pulse is not None:
            canonical["pulse"] = pulse
        check_plausible(kind, canonical, plausibility, field_prefix)
        return Measurement(
            kind=kind,
            source=source,
            at=at,
            systolic=canonical["systolic"],
            diastolic=canonical["diastolic"],
            pulse=pulse,
            unit_received=unit,
            received=(systolic, diastolic),
        )
    if value is None:
        raise InvalidInput(f"a {kind.value} reading needs a value", f"{field_prefix}.value")
    if systolic is not None or diastolic is not None:
        raise InvalidInput(f"a {kind.value} reading has a value, not systolic/diastolic", field_prefix)
    converted = to_canonical(kind, value, unit, units, f"{field_prefix}.unit")
    check_plausible(kind, {"value": converted}, plausibility, field_prefix)
    return Measurement(
        kind=kind, source=source, at=at, value=converted, unit_received=unit, received=(value,)
    )
