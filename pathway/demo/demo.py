"""A synthetic county for ``pathway demo``: GP teams, patients and ~18 months of their care.

Pure (no database, no clock of its own): :func:`county` yields, patient by patient, what an EHR, a
laboratory system and a wearable gateway would have sent — :class:`~pathway.ingest.PatientIn`,
:class:`~pathway.ingest.EncounterIn` and batches of :class:`~pathway.ingest.ReadingIn` — and
``pathway demo`` stores them through :mod:`pathway.patients`, so everything is validated and
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

import hashlib
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Protocol, TypeVar
from zoneinfo import ZoneInfo

from pathway.clinical.vocabulary import Complication, Condition, ReadingKind, ReadingSource, Sex
from pathway.demo.demo_county import (
    AT_A_VISIT,
    BP_SCENARIOS,
    GLUCOSE_SCENARIOS,
    BpBand,
    Control,
    CountySpec,
    ScenarioKind,
    ScenarioSpec,
)
from pathway.ingest.inbound import ComplicationIn, EncounterIn, EncounterReadingIn, PatientIn, ReadingIn

DAYS_PER_YEAR = 365.25
TENTH = Decimal("0.1")


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


def demo_phone(external_id: str) -> str:
    """A made-up mobile number for a demo patient, from its external id (drawing no random number, so
    the county is the same as before phones were added): ``139-NNNN-NNNN``."""
    digits = str(int(hashlib.sha256(external_id.encode()).hexdigest(), 16))[-8:]
    return f"139-{digits[:4]}-{digits[4:]}"


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
        if kind in BP_SCENARIOS:
            conditions.add(Condition.HYPERTENSION)
        if kind in GLUCOSE_SCENARIOS:
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
            phone=demo_phone(self.ext),
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
        if kind in AT_A_VISIT:
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
