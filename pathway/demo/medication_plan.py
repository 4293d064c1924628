"""One demo patient's medication (PATHWAY.md §7): what the EHR prescribed and what each visit recorded.

A treated patient has a regimen per condition (``county.yaml`` ``medication.regimens``: a CCB alone,
ARB + CCB, a single-pill combination, metformin alone or with a second agent, a statin…), renewed
together as 长处方 a few days before each supply runs out, every renewal a new prescription with its
own id; the last drug of a regimen (or the lipid-lowering one) may have been added at a later
renewal. Some patients stopped renewing (their last supply ended days ago), some take nothing
(lifestyle only, recorded as "takes none"), and some EHRs send no medication at all. Each visit
records 用药情况, 服药依从性 (more often 间断 / 不服药 at a visit whose values came out uncontrolled)
and 药物不良反应. Every share, drug and span is data (``medication`` in ``county.yaml``); nothing here
decides a tier: the rule pack judges what was prescribed.

Deterministic and independent of the rest of the patient's draws: it draws from its own
``random.Random(f"{seed}:{index}:medication")``, so the patient's readings are those they had
before medication was added, and every prescription id derives from the patient's external id.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pathway.clinical.medication import Adherence
from pathway.clinical.vocabulary import Complication, Condition
from pathway.demo.draws import pick, uniform
from pathway.demo.spec import Control, Drug, MedicationSpec, Regimen, ScenarioKind, ScenarioSpec
from pathway.ingest.inbound import EncounterIn
from pathway.ingest.medication_in import PrescriptionIn

TREATED_CONDITIONS = (Condition.HYPERTENSION, Condition.DIABETES)
LIPID_REGIMENS = Condition.DYSLIPIDEMIA
MEDICATION_SCENARIOS = {
    ScenarioKind.RESISTANT_HYPERTENSION,
    ScenarioKind.ADVERSE_REACTION_PERSISTENT,
    ScenarioKind.SUPPLY_LAPSED,
}

PrescriptionBatch = tuple[datetime, tuple[PrescriptionIn, ...]]
"""Prescriptions the EHR posted at one moment (a renewal: every drug of the patient's regimens)."""


@dataclass(frozen=True)
class Medication:
    """The patient's visits with their medication answers, and the prescriptions, oldest first."""

    encounters: tuple[EncounterIn, ...]
    prescriptions: tuple[PrescriptionBatch, ...]


@dataclass(frozen=True)
class _Line:
    """One drug of the patient's regimens, prescribed from the ``first`` renewal on."""

    drug: Drug
    first: int


class MedicationPlan:
    """Draws one patient's prescriptions and visit answers (see the module)."""

    def __init__(
        self,
        spec: MedicationSpec,
        seed: int,
        index: int,
        external_id: str,
        now: datetime,
        tz: ZoneInfo,
        clinic_hours: tuple[float, float],
        posted_minutes: int,
    ) -> None:
        self.spec = spec
        self.rng = random.Random(f"{seed}:{index}:medication")
        self.ext = external_id
        self.now = now
        self.tz = tz
        self.today = now.astimezone(tz).date()
        self.clinic_hours = clinic_hours
        self.posted = timedelta(minutes=posted_minutes)

    def build(
        self,
        conditions: set[Condition],
        complications: set[Complication],
        encounters: Sequence[EncounterIn],
        uncontrolled: Mapping[str, bool],
        scenario: ScenarioSpec | None,
    ) -> Medication:
        """``encounters``: every visit, oldest first; ``uncontrolled``: for each routine visit (by its
        source id), whether a value drawn for it fell in the uncontrolled band."""
        rng, spec = self.rng, self.spec
        kind = scenario.kind if scenario is not None else None
        if kind not in MEDICATION_SCENARIOS and rng.random() < spec.unrecorded_share:
            return Medication(tuple(encounters), ())
        steady = kind is ScenarioKind.STEADY
        routine = [e for e in encounters if e.source_encounter_id in uncontrolled]
        first_visit = routine[0].at.astimezone(self.tz).date() if routine else self.today
        start = max(self.today - timedelta(days=spec.history_days), first_visit)
        regimens = self._regimens(conditions, complications, scenario)
        cut = self._lapse(scenario, steady, start) if regimens else None
        renewals = self._renewals(start, cut)
        lines = self._lines(regimens, len(renewals), steady or kind is ScenarioKind.RESISTANT_HYPERTENSION)
        batches = tuple(
            self._batch(number, day, supply, lines) for number, (day, supply) in enumerate(renewals)
        )
        drugs = [line.drug for line in lines]
        answered = self._answers(encounters, uncontrolled, drugs, cut, kind)
        return Medication(answered, tuple(b for b in batches if b[1]))

    # what is prescribed ----------------------------------------------------------------------------

    def _regimens(
        self, conditions: set[Condition], complications: set[Complication], scenario: ScenarioSpec | None
    ) -> list[Regimen]:
        rng, spec = self.rng, self.spec
        chosen: list[Regimen] = []
        for condition in TREATED_CONDITIONS:
            if condition not in conditions or condition not in spec.regimens:
                continue
            options = spec.regimens[condition]
            forced = (
                scenario.regimen if scenario is not None and condition is Condition.HYPERTENSION else None
            )
            if forced is not None:
                chosen.append(next(r for r in options if r.label == forced))
            elif rng.random() < spec.treated.get(condition, 0.0):
                chosen.append(pick(rng, options))
        indication = next(
            (
                i
                for i in spec.lipid_lowering
                if set(i.complications) & complications or set(i.conditions) & conditions
            ),
            None,
        )
        lipid = spec.regimens.get(LIPID_REGIMENS, [])
        if indication is not None and lipid and rng.random() < indication.share:
            chosen.append(pick(rng, lipid))
        kind = scenario.kind if scenario is not None else None
        if not chosen and kind in MEDICATION_SCENARIOS:  # a medication history needs a treated patient
            treatable = [c for c in TREATED_CONDITIONS if c in conditions and c in spec.regimens]
            chosen.append(pick(rng, spec.regimens[treatable[0]] if treatable else lipid))
        return chosen

    def _lapse(self, scenario: ScenarioSpec | None, steady: bool, start: date) -> date | None:
        """The day the last supply ended for a patient who stopped renewing, else None."""
        rng = self.rng
        draw = rng.random()
        span: tuple[float, float] | None = None
        if scenario is not None and scenario.kind is ScenarioKind.SUPPLY_LAPSED:
            span = scenario.days_ago
        elif not steady and (scenario is None or scenario.kind not in MEDICATION_SCENARIOS):
            for lapse in self.spec.lapses:
                if draw < lapse.share:
                    span = lapse.days_ago
                    break
                draw -= lapse.share
        if span is None:
            return None
        cut = self.today - timedelta(days=round(uniform(rng, span)))
        shortest = min(s.days for s in self.spec.supply_days)
        return cut if cut - start >= timedelta(days=shortest) else None

    def _renewals(self, start: date, cut: date | None) -> list[tuple[date, int]]:
        """(day, supply days) of each renewal: the last covers today, or its supply ends at ``cut``."""
        rng, spec = self.rng, self.spec
        last_day = cut if cut is not None else self.today
        renewals: list[tuple[date, int]] = []
        day = start
        while day <= last_day:
            supply = pick(rng, spec.supply_days).days
            renewals.append((day, supply))
            day += timedelta(days=supply - round(uniform(rng, spec.refill_early_days)))
        if cut is not None and renewals:  # the last supply ends at the cut, not later
            shortest = min(s.days for s in spec.supply_days)
            while renewals and (cut - renewals[-1][0]).days < shortest and len(renewals) > 1:
                renewals.pop()
            day = renewals[-1][0]
            renewals[-1] = (day, max(1, (cut - day).days))
        return renewals

    def _lines(self, regimens: Sequence[Regimen], renewals: int, from_the_start: bool) -> list[_Line]:
        rng, formulary = self.rng, self.spec.formulary
        lines: list[_Line] = []
        for regimen in regimens:
            later = not from_the_start and renewals > 1 and rng.random() < self.spec.added_later_share
            added = rng.randint(1, renewals - 1) if later else 0
            lipid = regimen in self.spec.regimens.get(LIPID_REGIMENS, [])
            for position, drug_id in enumerate(regimen.drugs):
                last = position == len(regimen.drugs) - 1
                first = added if (lipid or (last and len(regimen.drugs) > 1)) else 0
                lines.append(_Line(formulary[drug_id], first))
        return lines

    def _batch(self, number: int, day: date, supply: int, lines: Sequence[_Line]) -> PrescriptionBatch:
        start = datetime.combine(day, time(0), tzinfo=self.tz)
        posted = min(start + timedelta(hours=uniform(self.rng, self.clinic_hours)) + self.posted, self.now)
        items = tuple(
            PrescriptionIn(
                source_prescription_id=f"{self.ext}-rx{number + 1:02d}-{slot + 1}",
                atc=line.drug.atc,
                drug=line.drug.drug,
                dose=line.drug.dose,
                started_on=day,
                supply_days=supply,
            )
            for slot, line in enumerate(lines)
            if line.first <= number
        )
        return posted, items

    # what the visits record ------------------------------------------------------------------------

    def _answers(
        self,
        encounters: Sequence[EncounterIn],
        uncontrolled: Mapping[str, bool],
        drugs: Sequence[Drug],
        cut: date | None,
        kind: ScenarioKind | None,
    ) -> tuple[EncounterIn, ...]:
        rng, visits = self.rng, self.spec.visits
        reactions = [d.reaction for d in drugs if d.reaction is not None]
        routine = [e.source_encounter_id for e in encounters if e.source_encounter_id in uncontrolled]
        last = routine[-1] if routine else None
        answered: list[EncounterIn] = []
        for encounter in encounters:
            visit = encounter.source_encounter_id
            if visit is None or visit not in uncontrolled:
                answered.append(encounter)
                continue
            update: dict[str, object] = {"medications_reviewed": rng.random() < visits.reviewed_share}
            if drugs and rng.random() >= visits.adherence_not_asked_share:
                stopped = cut is not None and encounter.at.astimezone(self.tz).date() > cut
                control = Control.UNCONTROLLED if uncontrolled[visit] else Control.CONTROLLED
                mix = visits.adherence[control]
                drawn = rng.choices(list(mix), weights=list(mix.values()))[0]
                update["adherence"] = Adherence.NONE if stopped else drawn
            if kind is ScenarioKind.RESISTANT_HYPERTENSION and visit == last:
                update["adherence"] = Adherence.REGULAR  # taken as prescribed, still above target
            if reactions and kind is not ScenarioKind.STEADY and rng.random() < visits.adverse_asked_share:
                update["adverse_reaction"] = rng.random() < visits.adverse_share
            if kind is ScenarioKind.ADVERSE_REACTION_PERSISTENT and visit == last:
                update["adverse_reaction"] = True
            if update.get("adverse_reaction") and reactions:
                update["adverse_reaction_text"] = rng.choice(reactions)
            answered.append(encounter.model_copy(update=update))
        if kind is ScenarioKind.ADVERSE_REACTION_PERSISTENT and last is not None and reactions:
            answered.append(self._interim(next(e for e in answered if e.source_encounter_id == last)))
        return tuple(sorted(answered, key=lambda e: e.at))

    def _interim(self, last: EncounterIn) -> EncounterIn:
        """The 复诊 of a reaction reported at the last visit: two weeks later, or (when that is still to
        come) two weeks before it; it reports the reaction again."""
        gap = timedelta(days=self.spec.visits.interim_visit_days)
        at = last.at + gap if last.at + gap + self.posted <= self.now else last.at - gap
        return EncounterIn(
            at=at,
            source_encounter_id=f"{self.ext}-m01",
            medications_reviewed=True,
            adherence=Adherence.REGULAR,
            adverse_reaction=True,
            adverse_reaction_text=last.adverse_reaction_text,
        )
