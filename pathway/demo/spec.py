"""The distribution table of ``pathway demo`` (``county.yaml``) as validated models: systems, GP
teams, demographics, condition mix, visit and stream rates, value bands, control profiles and
scenarios. :func:`load_county` reads and checks it."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from pathway.clinical.medication import Adherence
from pathway.clinical.vocabulary import Complication, Condition, Sex, Symptom

COUNTY_FILE = Path(__file__).with_name("county.yaml")
TENTH = Decimal("0.1")


# --- The distribution table (county.yaml) --------------------------------------------------------


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
    # medication (PATHWAY.md §7; pathway.demo.medication_plan)
    RESISTANT_HYPERTENSION = "resistant_hypertension"  # above target at the last visit on its regimen
    ADVERSE_REACTION_PERSISTENT = "adverse_reaction_persistent"  # a reaction at two visits in a row
    SUPPLY_LAPSED = "supply_lapsed"  # stopped refilling: the last supply ended days_ago


_IN_HOURS = {
    ScenarioKind.OFFICE_BP_CRISIS,
    ScenarioKind.HOME_BP_CRISIS,
    ScenarioKind.HOME_BP_UNCONFIRMED,
    ScenarioKind.HYPERGLYCAEMIA,
    ScenarioKind.HYPOGLYCAEMIA_ENCOUNTER,
    ScenarioKind.HYPOGLYCAEMIA_HOME,
    ScenarioKind.HYPOGLYCAEMIA_HOME_MILD,
}
AT_A_VISIT = {
    ScenarioKind.OFFICE_BP_CRISIS,
    ScenarioKind.HYPERGLYCAEMIA,
    ScenarioKind.HYPOGLYCAEMIA_ENCOUNTER,
}
BP_SCENARIOS = {
    ScenarioKind.OFFICE_BP_CRISIS,
    ScenarioKind.HOME_BP_CRISIS,
    ScenarioKind.HOME_BP_UNCONFIRMED,
    ScenarioKind.RESISTANT_HYPERTENSION,
}
GLUCOSE_SCENARIOS = {
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
    regimen: str | None = None  # the hypertension regimen (medication.regimens) it prescribes

    @model_validator(mode="after")
    def _timed(self) -> ScenarioSpec:
        if self.kind in _IN_HOURS and self.hours_ago is None:
            raise ValueError(f"scenario {self.kind.value} needs hours_ago")
        dated = (ScenarioKind.LOST, ScenarioKind.NEW_COMPLICATION, ScenarioKind.SUPPLY_LAPSED)
        if self.kind in dated and self.days_ago is None:
            raise ValueError(f"scenario {self.kind.value} needs days_ago")
        if self.kind is ScenarioKind.NEW_COMPLICATION and self.complication is None:
            raise ValueError("scenario new_complication needs a complication")
        if self.kind is ScenarioKind.RESISTANT_HYPERTENSION and self.regimen is None:
            raise ValueError("scenario resistant_hypertension needs a regimen")
        return self


# --- Medication (PATHWAY.md §7): what the EHR prescribes and records at the visits ---------------


class Drug(_Spec):
    """A drug of the county's formulary, as the EHR writes it (the pack maps its ATC code to classes)."""

    atc: str = Field(min_length=1)
    drug: str = Field(min_length=1)
    dose: str = Field(min_length=1)
    reaction: str | None = None  # the adverse reaction a patient on it reports


class Regimen(_Spec):
    label: str
    weight: float = Field(gt=0)
    drugs: list[str] = Field(min_length=1)  # formulary ids; the last is the add-on of a step-up


class StatinIndication(_Spec):
    """A share of the patients with any of these complications or conditions on lipid-lowering drugs."""

    share: Share
    complications: list[Complication] = Field(default_factory=list)
    conditions: list[Condition] = Field(default_factory=list)


class SupplyDays(_Spec):
    days: int = Field(ge=1)
    weight: float = Field(gt=0)


class Lapse(_Spec):
    """A share of the treated patients who stopped refilling: the last supply ended days_ago."""

    label: str
    share: Share
    days_ago: Span


class MedicationAnswers(_Spec):
    """What a visit records about medication (用药情况, 服药依从性, 药物不良反应)."""

    reviewed_share: Share
    adherence_not_asked_share: Share
    adherence: dict[Control, dict[Adherence, float]]
    adverse_asked_share: Share
    adverse_share: Share
    interim_visit_days: int = Field(
        gt=0
    )  # the 复诊 of a persistent reaction, after (or before) the last visit


class MedicationSpec(_Spec):
    unrecorded_share: Share  # patients whose EHR sends no medication at all
    history_days: int = Field(gt=0)  # how far back the EHR sends prescriptions
    treated: dict[Condition, Share]  # on drug treatment for the condition (the rest: lifestyle only)
    lipid_lowering: list[StatinIndication]
    formulary: dict[str, Drug]
    regimens: dict[Condition, list[Regimen]]  # by condition; dyslipidemia: the lipid-lowering ones
    added_later_share: Share  # a regimen's last drug, or the lipid-lowering one, added at a later refill
    supply_days: list[SupplyDays] = Field(min_length=1)
    refill_early_days: Span
    lapses: list[Lapse]
    visits: MedicationAnswers

    @model_validator(mode="after")
    def _known_drugs(self) -> MedicationSpec:
        for condition, regimens in self.regimens.items():
            for regimen in regimens:
                unknown = set(regimen.drugs) - set(self.formulary)
                if unknown:
                    raise ValueError(
                        f"medication.regimens.{condition.value}.{regimen.label}: unknown {unknown}"
                    )
        if set(self.visits.adherence) != set(Control):
            raise ValueError("medication.visits.adherence needs a controlled and an uncontrolled mix")
        if sum(lapse.share for lapse in self.lapses) > 1:
            raise ValueError("the lapse shares add up to more than 1")
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
    medication: MedicationSpec

    @model_validator(mode="after")
    def _shares(self) -> CountySpec:
        if sum(s.share for s in self.scenarios) > 1:
            raise ValueError("the scenario shares add up to more than 1")
        if len({t.code for t in self.teams}) != len(self.teams):
            raise ValueError("team codes must be unique")
        hypertension = {r.label for r in self.medication.regimens.get(Condition.HYPERTENSION, [])}
        for scenario in self.scenarios:
            if scenario.regimen is not None and scenario.regimen not in hypertension:
                raise ValueError(
                    f"scenario {scenario.kind.value}: no hypertension regimen {scenario.regimen!r}"
                )
        return self


def load_county(path: Path = COUNTY_FILE) -> CountySpec:
    """The distribution table, validated (unknown keys are errors)."""
    with path.open(encoding="utf-8") as handle:
        return CountySpec.model_validate(yaml.safe_load(handle))
