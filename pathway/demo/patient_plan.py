"""One synthetic patient of ``pathway demo`` and ~18 months of their care (:class:`PatientPlan`).

What a patient gets: an age, a sex and a mix of hypertension, diabetes and dyslipidaemia (some CKD
and 六病 complications); quarterly-ish visits with BP and fasting glucose, lab panels (HbA1c, lipids,
eGFR, UACR) before some of them, a wearable BP stream or a home glucose meter for some; and, for a
few, a special history (:class:`~pathway.demo.spec.ScenarioKind`): a crisis BP at the visit or at
home, a hyperglycaemia, a hypoglycaemia, a new complication, a patient lost to follow-up, resistant
hypertension, a persistent adverse drug reaction, a lapsed 长处方. Their prescriptions and what the
visits record about medication are :mod:`pathway.demo.medication_plan`'s.

Deterministic: patient ``i`` of seed ``s`` is drawn from ``random.Random(f"{s}:{i}")`` alone, and
its external id, encounter ids and reading ids derive from it. Times are relative to ``now``.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from pathway.clinical.vocabulary import Complication, Condition, ReadingKind, ReadingSource, Sex
from pathway.demo.draws import TENTH, pick, tenths, uniform, whole
from pathway.demo.medication_plan import MedicationPlan, PrescriptionBatch
from pathway.demo.spec import (
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


@dataclass(frozen=True)
class DemoPatient:
    """One patient of the county and everything the systems around the clinic sent about them."""

    index: int
    team_code: str
    scenario: ScenarioKind | None
    patient: PatientIn
    encounters: tuple[EncounterIn, ...]
    readings: tuple[tuple[str, tuple[ReadingIn, ...]], ...]  # (source_system, batch), oldest first
    prescriptions: tuple[PrescriptionBatch, ...]  # (when the EHR posted them, batch), oldest first
    # When the API assessed the patient: now; for a patient who missed the visit due after their
    # last one, also when that last visit was posted (its tasks are still open, and overdue by now).
    assessed_at: tuple[datetime, ...]

    @property
    def source_system(self) -> str:
        return self.patient.source_system


def demo_phone(external_id: str) -> str:
    """A made-up mobile number for a demo patient, from its external id (drawing no random number, so
    the county is the same as before phones were added): ``139-NNNN-NNNN``."""
    digits = str(int(hashlib.sha256(external_id.encode()).hexdigest(), 16))[-8:]
    return f"139-{digits[:4]}-{digits[4:]}"


def external_id(seed: int, index: int) -> str:
    return f"demo{seed}-{index:05d}"


class PatientPlan:
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
        self.uncontrolled: dict[str, bool] = {}  # routine visit id -> a value drawn uncontrolled
        self.scenario = self._scenario()
        visits = spec.visits
        self.medication = MedicationPlan(
            spec.medication,
            seed,
            index,
            self.ext,
            now,
            tz,
            visits.clinic_hours,
            visits.posted_minutes_after_visit,
        )

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
        return start + timedelta(hours=uniform(self.rng, hours))

    def build(self) -> DemoPatient:
        rng, spec, kind = self.rng, self.spec, self.kind
        demo = spec.demographics
        sex = Sex.MALE if rng.random() < demo.male_share else Sex.FEMALE
        conditions = set(pick(rng, spec.conditions).conditions)
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
        team = pick(rng, spec.teams)
        profile = max(spec.control, key=lambda c: c.controlled_share) if steady else pick(rng, spec.control)
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
        encounters = sorted(self.encounters, key=lambda e: e.at)
        medication = self.medication.build(
            conditions, self.complications, encounters, self.uncontrolled, self.scenario
        )
        return DemoPatient(
            index=self.index,
            team_code=team.code,
            scenario=kind,
            patient=patient,
            encounters=medication.encounters,
            readings=batches,
            prescriptions=medication.prescriptions,
            assessed_at=assessed,
        )

    def _complications(self, conditions: set[Condition]) -> list[ComplicationIn]:
        found: dict[Complication, ComplicationIn] = {}
        for spec in self.spec.complications:
            if conditions & set(spec.among) and self.rng.random() < spec.share:
                onset = self.today - timedelta(days=int(uniform(self.rng, spec.onset_days_ago)))
                found[spec.code] = ComplicationIn(code=spec.code, onset=onset)
        scenario = self.scenario
        if scenario is not None and scenario.kind is ScenarioKind.NEW_COMPLICATION:
            assert scenario.complication is not None
            assert scenario.days_ago is not None
            onset = self.today - timedelta(days=int(uniform(self.rng, scenario.days_ago)))
            found[scenario.complication] = ComplicationIn(code=scenario.complication, onset=onset)
        return list(found.values())

    def _lipid_baseline(self, steady: bool) -> None:
        values, rng = self.values, self.rng
        self.ldl = uniform(rng, (values.ldl_c[0] if steady else pick(rng, values.ldl_c)).span)
        self.tg = uniform(rng, (values.tg[0] if steady else pick(rng, values.tg)).span)
        low, high = values.hdl_c
        self.hdl = uniform(rng, ((low + high) / 2, high) if steady else (low, high))

    def _controlled(self) -> Control:
        return Control.CONTROLLED if self.rng.random() < self.controlled_share else Control.UNCONTROLLED

    # routine care --------------------------------------------------------------------------------

    def _visit_days(self, steady: bool) -> list[int]:
        """Days ago of each routine visit, oldest first (at least one)."""
        visits, rng = self.spec.visits, self.rng
        scenario = self.scenario
        if scenario is not None and scenario.kind is ScenarioKind.LOST:
            assert scenario.days_ago is not None
            last = round(uniform(rng, scenario.days_ago))
        else:
            # days since the last visit of a regular quarterly-ish patient (steady: recent)
            last = rng.randint(
                1, round(visits.interval_days[0] / 2 if steady else uniform(rng, visits.interval_days))
            )
        first = visits.history_days
        if not steady and rng.random() < visits.new_patient_share:
            first = max(last, round(uniform(rng, visits.new_patient_first_visit_days_ago)))
        days = [last]
        while (before := days[-1] + round(uniform(rng, visits.interval_days))) <= first:
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
        days = self._visit_days(steady)
        resistant = self.kind is ScenarioKind.RESISTANT_HYPERTENSION
        for number, days_ago in enumerate(days, start=1):
            at = self._at(days_ago, visits.clinic_hours)
            readings: list[EncounterReadingIn] = []
            controls: list[Control] = []
            if has(Condition.HYPERTENSION) or self.rng.random() < visits.bp_share_without_hypertension:
                control = Control.CONTROLLED if steady else self._controlled()
                if resistant and number == len(days):  # above target at the last visit, on its regimen
                    control = Control.UNCONTROLLED
                readings.append(self._office_bp(self.values.bp[control]))
                controls += [control] if has(Condition.HYPERTENSION) else []
            if has(Condition.DIABETES):
                controls.append(self._controlled())
                value = uniform(self.rng, self.values.fpg[controls[-1]])
                readings.append(EncounterReadingIn(kind=ReadingKind.FPG, value=tenths(value)))
            elif self.rng.random() < visits.fpg_share_without_diabetes:
                value = uniform(self.rng, self.values.fpg_without_diabetes)
                readings.append(EncounterReadingIn(kind=ReadingKind.FPG, value=tenths(value)))
            visit = f"{self.ext}-v{number:02d}"
            self.encounters.append(EncounterIn(at=at, source_encounter_id=visit, readings=readings))
            self.uncontrolled[visit] = Control.UNCONTROLLED in controls
            drawn = at - timedelta(minutes=visits.lab_minutes_before_visit)
            if has(Condition.DIABETES) and (last_hba1c is None or last_hba1c - days_ago >= hba1c_every):
                last_hba1c = days_ago
                hba1c = tenths(uniform(self.rng, self.values.hba1c[self._controlled()]))
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
            systolic=whole(rng, band.systolic),
            diastolic=whole(rng, band.diastolic),
            pulse=whole(rng, self.values.pulse),
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
        ldl = max(TENTH, tenths(self.ldl + uniform(rng, jitter)))
        hdl = max(TENTH, tenths(self.hdl + uniform(rng, jitter) / 2))
        tg = max(TENTH, tenths(self.tg + uniform(rng, jitter)))
        tc = tenths(float(ldl + hdl) + float(tg) / values.tc_tg_divisor)
        for kind, value in ((ReadingKind.TC, tc), (ReadingKind.LDL_C, ldl), (ReadingKind.HDL_C, hdl)):
            self._lab(kind, value, at)
        self._lab(ReadingKind.TG, tg, at)

    def _kidney_panel(self, at: datetime) -> None:
        values, has = self.values, self.conditions.__contains__
        if not (has(Condition.HYPERTENSION) or has(Condition.DIABETES) or has(Condition.CKD)):
            return
        egfr = values.egfr_ckd if has(Condition.CKD) else values.egfr
        self._lab(ReadingKind.EGFR, whole(self.rng, egfr), at)
        if has(Condition.DIABETES) or has(Condition.CKD):
            uacr = values.uacr_nephropathy if Complication.NEPHROPATHY in self.complications else values.uacr
            self._lab(ReadingKind.UACR, tenths(uniform(self.rng, uacr)), at)

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
                systolic=whole(rng, band.systolic) if band else None,
                diastolic=whole(rng, band.diastolic) if band else None,
                pulse=whole(rng, self.values.pulse) if band else None,
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
            for days_ago in range(round(uniform(rng, streams.home_bp_days)), -1, -1):
                for hours in streams.home_bp_hours:
                    at = self._at(days_ago, hours)
                    if at <= latest:
                        self._home(ReadingKind.BP, ReadingSource.WEARABLE, at, band=band)
        if Condition.DIABETES in self.conditions and rng.random() < streams.home_glucose_share_of_diabetic:
            for days_ago in range(round(uniform(rng, streams.home_glucose_days)), -1, -1):
                at = self._at(days_ago, streams.home_glucose_hours)
                if at <= latest:
                    value = tenths(uniform(rng, self.values.home_fpg))
                    self._home(ReadingKind.FPG, ReadingSource.HOME, at, value=value)

    # crises ----------------------------------------------------------------------------------------

    def _crisis(self) -> None:
        scenario, values, rng = self.scenario, self.values, self.rng
        if scenario is None or scenario.hours_ago is None:
            return
        at = self.now - timedelta(hours=uniform(rng, scenario.hours_ago))
        kind = scenario.kind
        if kind in AT_A_VISIT:
            if kind is ScenarioKind.OFFICE_BP_CRISIS:
                reading = self._office_bp(values.bp_crisis)
            else:
                high = kind is ScenarioKind.HYPERGLYCAEMIA
                span = values.glucose_crisis if high else values.glucose_hypo_encounter
                reading = EncounterReadingIn(kind=ReadingKind.FPG, value=tenths(uniform(rng, span)))
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
            value = tenths(uniform(rng, values.glucose_hypo_home_severe))
            self._home(ReadingKind.RPG, ReadingSource.CGM, at, value=value)
        elif kind is ScenarioKind.HYPOGLYCAEMIA_HOME_MILD:
            value = tenths(uniform(rng, values.glucose_hypo_home_mild))
            self._home(ReadingKind.FPG, ReadingSource.HOME, at, value=value)
