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
BP_SCENARIOS = {ScenarioKind.OFFICE_BP_CRISIS, ScenarioKind.HOME_BP_CRISIS, ScenarioKind.HOME_BP_UNCONFIRMED}
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
