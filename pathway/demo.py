"""A synthetic county for ``pathway demo``: GP teams, patients and ~18 months of their care.

Pure (no database, no clock of its own): :func:`county` yields, patient by patient, what an EHR, a
laboratory system and a wearable gateway would have sent — :class:`~pathway.ingest.PatientIn`,
:class:`~pathway.ingest.EncounterIn` and batches of :class:`~pathway.ingest.ReadingIn` — and
``pathway demo`` stores them through :mod:`pathway.service`, so everything is validated and
assessed exactly as the API would do it.

What a patient gets: an age, a sex and a mix of hypertension, diabetes and dyslipidaemia (some CKD
and 六病 complications); quarterly-ish visits with BP and fasting glucose, lab panels (HbA1c, lipids,
eGFR, UACR) before some of them, a wearable BP stream or a home glucose meter for some; and, for a
few, a special history (:class:`ScenarioKind`): a crisis BP at the visit or at home, a
hyperglycaemia, a hypoglycaemia, a new complication, a patient lost to follow-up. Every number of
that distribution (prevalences, value bands, intervals, shares) is data — ``demo_county.yaml``
beside this module — and none decides anything: the rule pack judges the values like any others.

Deterministic: patient ``i`` of seed ``s`` is drawn from ``random.Random(f"{s}:{i}")`` alone, so it
is the same whatever the county's size, and its external id, encounter ids and reading ids are
fixed: loading a county twice stores nothing new. Times are relative to ``now`` (the demo's clock).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, Protocol, TypeVar
from zoneinfo import ZoneInfo

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from pathway.ingest import ComplicationIn, EncounterIn, EncounterReadingIn, PatientIn, ReadingIn
from pathway.vocabulary import Complication, Condition, ReadingKind, ReadingSource, Sex, Symptom

COUNTY_FILE = Path(__file__).with_name("demo_county.yaml")
DAYS_PER_YEAR = 365.25
TENTH = Decimal("0.1")


# --- The distribution table (demo_county.yaml) -----------------------------------------------------


def _ordered(span: tuple[float, float]) -> tuple[float, float]:
    if span[0] > span[1]:
        raise ValueError(f"span [{span[0]}, {span[1]}] must be [low, high]")
    return span


Span = Annotated[tuple[float, float], AfterValidator(_ordered)]
Share = Annotated[float, Field(ge=0, le=1)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Systems(_Spec):
    ehr: str
    lab: str
    gateway: str


class TeamSpec(_Spec):
    code: str
    name: str
    level: Literal["home", "base", "center"]
    weight: float = Field(gt=0)


class Demographics(_Spec):
    age: Span
    age_mode: float
    male_share: Share
    smoker_share: dict[Sex, Share]
    ckd_share: Share


class Names(_Spec):
    surnames: str = Field(min_length=1)
    given: dict[Sex, str]


class ConditionMix(_Spec):
    conditions: list[Condition] = Field(min_length=1)
    weight: float = Field(gt=0)


class ComplicationSpec(_Spec):
    code: Complication
    share: Share
    among: list[Condition]
    onset_days_ago: Span


class ControlProfile(_Spec):
    label: str
    weight: float = Field(gt=0)
    controlled_share: Share


class Visits(_Spec):
    history_days: int = Field(gt=0)
    interval_days: Span
    missed_visit_share: Share
    new_patient_share: Share
    new_patient_first_visit_days_ago: Span
    clinic_hours: Span
    lab_minutes_before_visit: int = Field(ge=0)
    posted_minutes_after_visit: int = Field(ge=0)
    bp_share_without_hypertension: Share
    fpg_share_without_diabetes: Share
    hba1c_every_days: int = Field(gt=0)
    lipids_every_days: int = Field(gt=0)
    lipids_every_days_dyslipidemia: int = Field(gt=0)


class Streams(_Spec):
    home_bp_share_of_hypertensive: Share
    home_bp_days: Span
    home_bp_hours: list[Span] = Field(min_length=1)
    home_glucose_share_of_diabetic: Share
    home_glucose_days: Span
    home_glucose_hours: Span
    minutes_apart: int = Field(gt=0)  # a home reading and its repeat; the newest this long before now


class BpBand(_Spec):
    systolic: Span
    diastolic: Span


class Banded(_Spec):
    label: str
    weight: float = Field(gt=0)
    span: Span


class Control(StrEnum):
    CONTROLLED = "controlled"
    UNCONTROLLED = "uncontrolled"


class Values(_Spec):
    bp: dict[Control, BpBand]
    home_bp: dict[Control, BpBand]
    pulse: Span
    fpg: dict[Control, Span]
    fpg_without_diabetes: Span
    home_fpg: Span
    hba1c: dict[Control, Span]
    ldl_c: list[Banded] = Field(min_length=1)
    tg: list[Banded] = Field(min_length=1)
    hdl_c: Span
    lipid_jitter: float = Field(ge=0)
    tc_tg_divisor: float = Field(gt=0)
    egfr: Span
    egfr_ckd: Span
    uacr: Span
    uacr_nephropathy: Span
    bp_crisis: BpBand
    glucose_crisis: Span
    glucose_hypo_encounter: Span
    glucose_hypo_home_severe: Span
    glucose_hypo_home_mild: Span

    @model_validator(mode="after")
    def _both_bands(self) -> Values:
        for name in ("bp", "home_bp", "fpg", "hba1c"):
            if set(getattr(self, name)) != set(Control):
                raise ValueError(f"values.{name} needs a controlled and an uncontrolled band")
        return self


class ScenarioKind(StrEnum):
    STEADY = "steady"  # controlled, seen on time, nothing else: blue
    OFFICE_BP_CRISIS = "office_bp_crisis"
    HOME_BP_CRISIS = "home_bp_crisis"
    HOME_BP_UNCONFIRMED = "home_bp_unconfirmed"
    HYPERGLYCAEMIA = "hyperglycaemia"
    HYPOGLYCAEMIA_ENCOUNTER = "hypoglycaemia_encounter"
    HYPOGLYCAEMIA_HOME = "hypoglycaemia_home"
    HYPOGLYCAEMIA_HOME_MILD = "hypoglycaemia_home_mild"
    NEW_COMPLICATION = "new_complication"
    LOST = "lost"  # stopped coming: the last visit long ago


_IN_HOURS = {
    ScenarioKind.OFFICE_BP_CRISIS,
    ScenarioKind.HOME_BP_CRISIS,
    ScenarioKind.HOME_BP_UNCONFIRMED,
    ScenarioKind.HYPERGLYCAEMIA,
    ScenarioKind.HYPOGLYCAEMIA_ENCOUNTER,
    ScenarioKind.HYPOGLYCAEMIA_HOME,
    ScenarioKind.HYPOGLYCAEMIA_HOME_MILD,
}
_AT_A_VISIT = {
    ScenarioKind.OFFICE_BP_CRISIS,
    ScenarioKind.HYPERGLYCAEMIA,
    ScenarioKind.HYPOGLYCAEMIA_ENCOUNTER,
}
_BP_KINDS = {ScenarioKind.OFFICE_BP_CRISIS, ScenarioKind.HOME_BP_CRISIS, ScenarioKind.HOME_BP_UNCONFIRMED}
_GLUCOSE_KINDS = {
    ScenarioKind.HYPERGLYCAEMIA,
    ScenarioKind.HYPOGLYCAEMIA_ENCOUNTER,
    ScenarioKind.HYPOGLYCAEMIA_HOME,
    ScenarioKind.HYPOGLYCAEMIA_HOME_MILD,
}


class ScenarioSpec(_Spec):
    kind: ScenarioKind
    share: Share
    hours_ago: Span | None = None
    days_ago: Span | None = None
    symptoms: list[Symptom] = Field(default_factory=list)
    complication: Complication | None = None

    @model_validator(mode="after")
    def _timed(self) -> ScenarioSpec:
        if self.kind in _IN_HOURS and self.hours_ago is None:
            raise ValueError(f"scenario {self.kind.value} needs hours_ago")
        if self.kind in (ScenarioKind.LOST, ScenarioKind.NEW_COMPLICATION) and self.days_ago is None:
            raise ValueError(f"scenario {self.kind.value} needs days_ago")
        if self.kind is ScenarioKind.NEW_COMPLICATION and self.complication is None:
            raise ValueError("scenario new_complication needs a complication")
        return self


class CountySpec(_Spec):
    """The whole distribution table of a synthetic county."""

    systems: Systems
    teams: list[TeamSpec] = Field(min_length=1)
    demographics: Demographics
    names: Names
    conditions: list[ConditionMix] = Field(min_length=1)
    complications: list[ComplicationSpec]
    control: list[ControlProfile] = Field(min_length=1)
    visits: Visits
    streams: Streams
    values: Values
    scenarios: list[ScenarioSpec]

    @model_validator(mode="after")
    def _shares(self) -> CountySpec:
        if sum(s.share for s in self.scenarios) > 1:
            raise ValueError("the scenario shares add up to more than 1")
        if len({t.code for t in self.teams}) != len(self.teams):
            raise ValueError("team codes must be unique")
        return self


def load_county(path: Path = COUNTY_FILE) -> CountySpec:
    """The distribution table, validated (unknown keys are errors)."""
    with path.open(encoding="utf-8") as handle:
        return CountySpec.model_validate(yaml.safe_load(handle))


# --- One patient ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoPatient:
    """One patient of the county and everything the systems around the clinic sent about them."""

    index: int
    team_code: str
    scenario: ScenarioKind | None
    patient: PatientIn
    encounters: tuple[EncounterIn, ...]
    readings: tuple[tuple[str, tuple[ReadingIn, ...]], ...]  # (source_system, batch), oldest first
    # When the API assessed the patient: now; for a patient who missed the visit due after their
    # last one, also when that last visit was posted (its tasks are still open, and overdue by now).
    assessed_at: tuple[datetime, ...]

    @property
    def source_system(self) -> str:
        return self.patient.source_system


class _Weighted(Protocol):
    @property
    def weight(self) -> float: ...


W = TypeVar("W", bound=_Weighted)


def _pick(rng: random.Random, options: Sequence[W]) -> W:
    return rng.choices(list(options), weights=[o.weight for o in options])[0]


def _draw(rng: random.Random, span: tuple[float, float]) -> float:
    return rng.uniform(span[0], span[1])


def _tenths(value: float) -> Decimal:
    return Decimal(repr(value)).quantize(TENTH)


def _whole(rng: random.Random, span: tuple[float, float]) -> Decimal:
    return Decimal(rng.randint(round(span[0]), round(span[1])))


def external_id(seed: int, index: int) -> str:
    return f"demo{seed}-{index:05d}"


class _Patient:
    """Draws one patient's history; every id it hands out derives from the patient's external id."""

    def __init__(self, spec: CountySpec, seed: int, index: int, now: datetime, tz: ZoneInfo) -> None:
        self.spec = spec
        self.values = spec.values
        self.rng = random.Random(f"{seed}:{index}")
        self.index = index
        self.now = now
        self.tz = tz
        self.today = now.astimezone(tz).date()
        self.ext = external_id(seed, index)
        self.encounters: list[EncounterIn] = []
        self.lab: list[ReadingIn] = []
        self.home: list[ReadingIn] = []
        self.scenario = self._scenario()

    # drawing -------------------------------------------------------------------------------------

    def _scenario(self) -> ScenarioSpec | None:
        scenarios = self.spec.scenarios
        draw = self.rng.random()
        if self.index < len(scenarios):
            return scenarios[self.index]
        for scenario in scenarios:
            if draw < scenario.share:
                return scenario
            draw -= scenario.share
        return None

    @property
    def kind(self) -> ScenarioKind | None:
        return self.scenario.kind if self.scenario else None

    def _at(self, days_ago: int, hours: tuple[float, float]) -> datetime:
        """A local time of day ``days_ago`` calendar days before today (may be later than now)."""
        day = self.today - timedelta(days=days_ago)
        start = datetime.combine(day, time(0), tzinfo=self.tz)
        return start + timedelta(hours=_draw(self.rng, hours))

    def build(self) -> DemoPatient:
        rng, spec, kind = self.rng, self.spec, self.kind
        demo = spec.demographics
        sex = Sex.MALE if rng.random() < demo.male_share else Sex.FEMALE
        conditions = set(_pick(rng, spec.conditions).conditions)
        if kind in _BP_KINDS:
            conditions.add(Condition.HYPERTENSION)
        if kind in _GLUCOSE_KINDS:
            conditions.add(Condition.DIABETES)
        steady = kind is ScenarioKind.STEADY
        if steady:
            conditions = {Condition.HYPERTENSION}
        elif conditions & {Condition.HYPERTENSION, Condition.DIABETES} and rng.random() < demo.ckd_share:
            conditions.add(Condition.CKD)
        age = rng.triangular(demo.age[0], demo.age[1], demo.age_mode)
        birth = self.today - timedelta(days=int(age * DAYS_PER_YEAR))
        complications = [] if steady else self._complications(conditions)
        smoker = not steady and rng.random() < demo.smoker_share[sex]
        team = _pick(rng, spec.teams)
        profile = max(spec.control, key=lambda c: c.controlled_share) if steady else _pick(rng, spec.control)
        self.controlled_share = profile.controlled_share
        self.conditions = conditions
        self.complications = {c.code for c in complications}
        self._lipid_baseline(steady)
        last_routine, last_days_ago = self._routine_visits(steady)
        self._streams()
        self._crisis()
        names = spec.names
        given = names.given[sex]
        name = rng.choice(names.surnames) + "".join(rng.choice(given) for _ in range(rng.randint(1, 2)))
        patient = PatientIn(
            source_system=spec.systems.ehr,
            external_id=self.ext,
            team_code=team.code,
            name=name,
            sex=sex,
            birth_date=birth,
            conditions=sorted(conditions),
            complications=complications,
            smoker=smoker,
        )
        posted = last_routine + timedelta(minutes=spec.visits.posted_minutes_after_visit)
        late = last_days_ago > spec.visits.interval_days[1]
        assessed = (posted, self.now) if late and posted < self.now else (self.now,)
        batches = tuple(
            (system, tuple(sorted(items, key=lambda r: r.measured_at)))
            for system, items in ((spec.systems.lab, self.lab), (spec.systems.gateway, self.home))
            if items
        )
        return DemoPatient(
            index=self.index,
            team_code=team.code,
            scenario=kind,
            patient=patient,
            encounters=tuple(sorted(self.encounters, key=lambda e: e.at)),
            readings=batches,
            assessed_at=assessed,
        )

    def _complications(self, conditions: set[Condition]) -> list[ComplicationIn]:
        found: dict[Complication, ComplicationIn] = {}
        for spec in self.spec.complications:
            if conditions & set(spec.among) and self.rng.random() < spec.share:
                onset = self.today - timedelta(days=int(_draw(self.rng, spec.onset_days_ago)))
                found[spec.code] = ComplicationIn(code=spec.code, onset=onset)
        scenario = self.scenario
        if scenario is not None and scenario.kind is ScenarioKind.NEW_COMPLICATION:
            assert scenario.complication is not None
            assert scenario.days_ago is not None
            onset = self.today - timedelta(days=int(_draw(self.rng, scenario.days_ago)))
            found[scenario.complication] = ComplicationIn(code=scenario.complication, onset=onset)
        return list(found.values())

    def _lipid_baseline(self, steady: bool) -> None:
        values, rng = self.values, self.rng
        self.ldl = _draw(rng, (values.ldl_c[0] if steady else _pick(rng, values.ldl_c)).span)
        self.tg = _draw(rng, (values.tg[0] if steady else _pick(rng, values.tg)).span)
        low, high = values.hdl_c
        self.hdl = _draw(rng, ((low + high) / 2, high) if steady else (low, high))

    def _controlled(self) -> Control:
        return Control.CONTROLLED if self.rng.random() < self.controlled_share else Control.UNCONTROLLED

    # routine care --------------------------------------------------------------------------------

    def _visit_days(self, steady: bool) -> list[int]:
        """Days ago of each routine visit, oldest first (at least one)."""
        visits, rng = self.spec.visits, self.rng
        scenario = self.scenario
        if scenario is not None and scenario.kind is ScenarioKind.LOST:
            assert scenario.days_ago is not None
            last = round(_draw(rng, scenario.days_ago))
        else:
            # days since the last visit of a regular quarterly-ish patient (steady: recent)
            last = rng.randint(
                1, round(visits.interval_days[0] / 2 if steady else _draw(rng, visits.interval_days))
            )
        first = visits.history_days
        if not steady and rng.random() < visits.new_patient_share:
            first = max(last, round(_draw(rng, visits.new_patient_first_visit_days_ago)))
        days = [last]
        while (before := days[-1] + round(_draw(rng, visits.interval_days))) <= first:
            days.append(before)
        kept = [d for d in days if steady or rng.random() >= visits.missed_visit_share]
        return sorted(kept or days[-1:], reverse=True)

    def _routine_visits(self, steady: bool) -> tuple[datetime, int]:
        """Visits with their readings and lab panels; the time of the last one, and its days ago."""
        visits = self.spec.visits
        has = self.conditions.__contains__
        last_hba1c = last_lipids = None
        days_ago = 0
        hba1c_every = visits.hba1c_every_days
        lipids_every = (
            visits.lipids_every_days_dyslipidemia if has(Condition.DYSLIPIDEMIA) else visits.lipids_every_days
        )
        at = self.now
        for number, days_ago in enumerate(self._visit_days(steady), start=1):
            at = self._at(days_ago, visits.clinic_hours)
            readings: list[EncounterReadingIn] = []
            if has(Condition.HYPERTENSION) or self.rng.random() < visits.bp_share_without_hypertension:
                control = Control.CONTROLLED if steady else self._controlled()
                readings.append(self._office_bp(self.values.bp[control]))
            if has(Condition.DIABETES):
                value = _draw(self.rng, self.values.fpg[self._controlled()])
                readings.append(EncounterReadingIn(kind=ReadingKind.FPG, value=_tenths(value)))
            elif self.rng.random() < visits.fpg_share_without_diabetes:
                value = _draw(self.rng, self.values.fpg_without_diabetes)
                readings.append(EncounterReadingIn(kind=ReadingKind.FPG, value=_tenths(value)))
            self.encounters.append(
                EncounterIn(at=at, source_encounter_id=f"{self.ext}-v{number:02d}", readings=readings)
            )
            drawn = at - timedelta(minutes=visits.lab_minutes_before_visit)
            if has(Condition.DIABETES) and (last_hba1c is None or last_hba1c - days_ago >= hba1c_every):
                last_hba1c = days_ago
                hba1c = _tenths(_draw(self.rng, self.values.hba1c[self._controlled()]))
                self._lab(ReadingKind.HBA1C, hba1c, drawn)
            if last_lipids is None or last_lipids - days_ago >= lipids_every:
                last_lipids = days_ago
                self._lipid_panel(drawn)
                self._kidney_panel(drawn)
        return at, days_ago

    def _office_bp(self, band: BpBand) -> EncounterReadingIn:
        rng = self.rng
        return EncounterReadingIn(
            kind=ReadingKind.BP,
            systolic=_whole(rng, band.systolic),
            diastolic=_whole(rng, band.diastolic),
            pulse=_whole(rng, self.values.pulse),
        )

    def _lab(self, kind: ReadingKind, value: Decimal, at: datetime) -> None:
        self.lab.append(
            ReadingIn(
                kind=kind,
                value=value,
                source=ReadingSource.LAB,
                measured_at=at,
                source_reading_id=f"{self.ext}-lab-{len(self.lab) + 1:03d}",
            )
        )

    def _lipid_panel(self, at: datetime) -> None:
        values, rng = self.values, self.rng
        jitter = (-values.lipid_jitter, values.lipid_jitter)
        ldl = max(TENTH, _tenths(self.ldl + _draw(rng, jitter)))
        hdl = max(TENTH, _tenths(self.hdl + _draw(rng, jitter) / 2))
        tg = max(TENTH, _tenths(self.tg + _draw(rng, jitter)))
        tc = _tenths(float(ldl + hdl) + float(tg) / values.tc_tg_divisor)
        for kind, value in ((ReadingKind.TC, tc), (ReadingKind.LDL_C, ldl), (ReadingKind.HDL_C, hdl)):
            self._lab(kind, value, at)
        self._lab(ReadingKind.TG, tg, at)

    def _kidney_panel(self, at: datetime) -> None:
        values, has = self.values, self.conditions.__contains__
        if not (has(Condition.HYPERTENSION) or has(Condition.DIABETES) or has(Condition.CKD)):
            return
        egfr = values.egfr_ckd if has(Condition.CKD) else values.egfr
        self._lab(ReadingKind.EGFR, _whole(self.rng, egfr), at)
        if has(Condition.DIABETES) or has(Condition.CKD):
            uacr = values.uacr_nephropathy if Complication.NEPHROPATHY in self.complications else values.uacr
            self._lab(ReadingKind.UACR, _tenths(_draw(self.rng, uacr)), at)

    # devices at home -----------------------------------------------------------------------------

    def _home(
        self,
        kind: ReadingKind,
        source: ReadingSource,
        at: datetime,
        *,
        value: Decimal | None = None,
        band: BpBand | None = None,
    ) -> None:
        rng = self.rng
        device = "band" if kind is ReadingKind.BP else ("cgm" if source is ReadingSource.CGM else "meter")
        self.home.append(
            ReadingIn(
                kind=kind,
                value=value,
                systolic=_whole(rng, band.systolic) if band else None,
                diastolic=_whole(rng, band.diastolic) if band else None,
                pulse=_whole(rng, self.values.pulse) if band else None,
                source=source,
                measured_at=at,
                device_id=f"{device}-{self.ext}",
                source_reading_id=f"{self.ext}-home-{len(self.home) + 1:03d}",
            )
        )

    def _streams(self) -> None:
        streams, rng = self.spec.streams, self.rng
        latest = self.now - timedelta(minutes=self.spec.streams.minutes_apart)
        if Condition.HYPERTENSION in self.conditions and rng.random() < streams.home_bp_share_of_hypertensive:
            band = self.values.home_bp[self._controlled()]
            for days_ago in range(round(_draw(rng, streams.home_bp_days)), -1, -1):
                for hours in streams.home_bp_hours:
                    at = self._at(days_ago, hours)
                    if at <= latest:
                        self._home(ReadingKind.BP, ReadingSource.WEARABLE, at, band=band)
        if Condition.DIABETES in self.conditions and rng.random() < streams.home_glucose_share_of_diabetic:
            for days_ago in range(round(_draw(rng, streams.home_glucose_days)), -1, -1):
                at = self._at(days_ago, streams.home_glucose_hours)
                if at <= latest:
                    value = _tenths(_draw(rng, self.values.home_fpg))
                    self._home(ReadingKind.FPG, ReadingSource.HOME, at, value=value)

    # crises ----------------------------------------------------------------------------------------

    def _crisis(self) -> None:
        scenario, values, rng = self.scenario, self.values, self.rng
        if scenario is None or scenario.hours_ago is None:
            return
        at = self.now - timedelta(hours=_draw(rng, scenario.hours_ago))
        kind = scenario.kind
        if kind in _AT_A_VISIT:
            if kind is ScenarioKind.OFFICE_BP_CRISIS:
                reading = self._office_bp(values.bp_crisis)
            else:
                high = kind is ScenarioKind.HYPERGLYCAEMIA
                span = values.glucose_crisis if high else values.glucose_hypo_encounter
                reading = EncounterReadingIn(kind=ReadingKind.FPG, value=_tenths(_draw(rng, span)))
            visit = f"{self.ext}-c01"
            self.encounters.append(
                EncounterIn(at=at, source_encounter_id=visit, readings=[reading], symptoms=scenario.symptoms)
            )
        elif kind is ScenarioKind.HOME_BP_CRISIS:
            self._home(ReadingKind.BP, ReadingSource.WEARABLE, at, band=values.bp_crisis)
            second = min(at + timedelta(minutes=self.spec.streams.minutes_apart), self.now)
            self._home(ReadingKind.BP, ReadingSource.WEARABLE, second, band=values.bp_crisis)
        elif kind is ScenarioKind.HOME_BP_UNCONFIRMED:
            self._home(ReadingKind.BP, ReadingSource.WEARABLE, at, band=values.bp_crisis)
        elif kind is ScenarioKind.HYPOGLYCAEMIA_HOME:
            value = _tenths(_draw(rng, values.glucose_hypo_home_severe))
            self._home(ReadingKind.RPG, ReadingSource.CGM, at, value=value)
        elif kind is ScenarioKind.HYPOGLYCAEMIA_HOME_MILD:
            value = _tenths(_draw(rng, values.glucose_hypo_home_mild))
            self._home(ReadingKind.FPG, ReadingSource.HOME, at, value=value)


def county(spec: CountySpec, size: int, seed: int, now: datetime, tz: ZoneInfo) -> Iterator[DemoPatient]:
    """The county's patients 0 … size−1, one at a time (each drawn independently of the others)."""
    for index in range(size):
        yield _Patient(spec, seed, index, now, tz).build()


# --- What the load did, and where to look -----------------------------------------------------------


@dataclass
class LoadTally:
    """Counts of one load, for the summary ``pathway demo`` prints."""

    patients: int = 0
    created: int = 0
    encounters: int = 0
    readings: int = 0
    duplicates: int = 0
    rejected: list[str] = field(default_factory=list)
    assessments: int = 0
    tiers: Counter[str] = field(default_factory=Counter)
    scenarios: Counter[str] = field(default_factory=Counter)
    teams: Counter[str] = field(default_factory=Counter)  # patients by team code
    red_patient: dict[str, int] = field(default_factory=dict)  # team code -> a red patient's id

    def patient(self, plan: DemoPatient, patient_id: int, created: bool, tier: str | None) -> None:
        self.patients += 1
        self.created += created
        self.teams[plan.team_code] += 1
        if plan.scenario is not None:
            self.scenarios[plan.scenario.value] += 1
        if tier is not None:
            self.tiers[tier] += 1
            if tier == "red":
                self.red_patient.setdefault(plan.team_code, patient_id)


@dataclass(frozen=True)
class TeamKey:
    team_id: int
    code: str
    name: str
    level: str
    patients: int
    key: str


def where_to_look(
    *,
    base_url: str,
    database_url: str,
    today: date,
    teams: Sequence[TeamKey],
    ehr_key: str,
    red_patient: dict[str, int],
) -> list[str]:
    """The lines that tell a visitor how to serve the demo and what to open (keys included)."""
    since = today.replace(year=today.year - 1, day=1)  # the indicators of the last twelve months or so
    lines = [
        "Serve it (another terminal; same database):",
        f"  PATHWAY_DATABASE_URL={database_url} .venv/bin/pathway serve",
        f"  interactive docs: {base_url}/docs  (Authorize with one of the keys below)",
        "",
        "API keys (shown once; send as 'Authorization: Bearer <key>'):",
        f"  ehr (all patients)  {ehr_key}",
    ]
    lines += [f"  team {t.code:<14} {t.key}" for t in teams]
    for t in teams:
        lines += [
            "",
            f"{t.name} ({t.level}, team {t.team_id}, {t.patients:,} patients):",
            f"  daily list  {base_url}/v1/teams/{t.team_id}/tasks?date={today.isoformat()}",
            f"  indicators  {base_url}/v1/teams/{t.team_id}/indicators"
            f"?from={since.isoformat()}&to={today.isoformat()}",
        ]
        if t.code in red_patient:
            lines.append(f"  a red patient  {base_url}/v1/patients/{red_patient[t.code]}")
    if teams:
        first = teams[0]
        lines += [
            "",
            "For example:",
            f"  curl -H 'Authorization: Bearer {first.key}' "
            f"'{base_url}/v1/teams/{first.team_id}/tasks?date={today.isoformat()}'",
        ]
    return lines
