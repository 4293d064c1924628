"""Clinical parameters a rule pack supplies to the domain: units, plausibility, windows, targets.

These are data (read from the pack's YAML, each block with its ``source``); the domain code
only knows how to apply them. Nothing in ``pathway/`` holds a clinical number of its own.
"""

from __future__ import annotations

from decimal import Decimal
from functools import cached_property
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

from pathway.clinical.conditions import Condition
from pathway.clinical.vocabulary import CareCheck, Complication, ReadingKind, ReadingSource, Symptom
from pathway.clinical.vocabulary import Condition as ConditionCode


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Conversion(_Strict):
    """canonical = value × multiply ÷ divide + add, then rounded half up to the kind's precision."""

    multiply: Decimal = Decimal(1)
    divide: Decimal = Decimal(1)
    add: Decimal = Decimal(0)


class UnitRule(_Strict):
    canonical: str
    aliases: list[str] = Field(default_factory=list, description="other spellings of the canonical unit")
    precision: int = Field(ge=0, le=4, description="decimals kept after converting a non-canonical unit")
    accepted: dict[str, Conversion] = Field(default_factory=dict)

    @cached_property
    def spellings(self) -> dict[str, Conversion | None]:
        """Every accepted spelling, casefolded: None for the canonical unit and its aliases (nothing
        to convert; they win over a conversion spelled the same), else the conversion."""
        table: dict[str, Conversion | None] = {name.casefold(): c for name, c in self.accepted.items()}
        table.update({name.casefold(): None for name in (self.canonical, *self.aliases)})
        return table

    @cached_property
    def quantum(self) -> Decimal:
        """The smallest step kept after a conversion (``precision`` decimals)."""
        return Decimal(1).scaleb(-self.precision)


class Range(_Strict):
    min: Decimal
    max: Decimal

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.min > self.max:
            raise ValueError(f"range min {self.min} is above max {self.max}")
        return self


class Plausibility(_Strict):
    """Ranges in canonical units; a value outside is rejected, never stored."""

    source: str
    ranges: dict[ReadingKind, dict[str, Range]]
    systolic_above_diastolic: bool = True
    max_future_minutes: PositiveInt


class Units(_Strict):
    source: str
    kinds: dict[ReadingKind, UnitRule]

    @model_validator(mode="after")
    def _every_kind(self) -> Units:
        missing = set(ReadingKind) - set(self.kinds)
        if missing:
            raise ValueError(f"units missing for reading kinds {sorted(missing)}")
        return self


class HomeBloodPressure(_Strict):
    """Home BP mean: readings of these sources in the window, enough of them on enough days."""

    sources: list[ReadingSource]
    window_days: PositiveInt
    min_readings: PositiveInt
    min_distinct_days: PositiveInt


class CrisisBloodPressure(_Strict):
    """A reading at or above either component is a crisis reading."""

    systolic: Decimal
    diastolic: Decimal
    window_hours: PositiveInt
    home_sources: list[ReadingSource]
    confirm_min_readings: PositiveInt
    confirm_min_separation_minutes: PositiveInt


class SnapshotWindows(_Strict):
    """The windows and groupings PATHWAY.md §2 uses to derive facts."""

    source: str
    office_bp_max_age_days: PositiveInt
    home_bp: HomeBloodPressure
    crisis: CrisisBloodPressure
    symptom_window_hours: PositiveInt
    bp_danger_symptoms: list[Symptom]
    hyperglycaemic_crisis_signs: list[Symptom]
    acute_glucose_window_hours: PositiveInt
    encounter_glucose_sources: list[ReadingSource]
    self_monitored_glucose_sources: list[ReadingSource]
    self_monitored_glucose_window_days: PositiveInt
    encounter_glucose_max_age_days: PositiveInt
    classification_window_days: PositiveInt
    lipid_max_age_days: PositiveInt
    pregnancy_glucose_window_days: PositiveInt
    ascvd: list[Complication]
    ascvd_risk_conditions: list[ConditionCode | Literal["smoker"]]
    lab_evidence_of_checks: dict[CareCheck, list[ReadingKind]] = Field(default_factory=dict)


class BloodPressureTarget(_Strict):
    systolic: Decimal
    diastolic: Decimal


class BloodPressureBand(_Strict):
    """The first band whose ``when`` holds for the patient gives the office and home targets."""

    label: str
    when: Condition
    office: BloodPressureTarget
    home: BloodPressureTarget


class GlucoseTargets(_Strict):
    fasting_below: Decimal
    non_fasting_below: Decimal
    hba1c_below: Decimal
    hba1c_max_age_days: PositiveInt


class LipidBand(_Strict):
    """One column of the 血脂2023 chart: LDL-C in [ldl_from, ldl_below) or, without LDL-C, TC."""

    ldl_from: Decimal
    ldl_below: Decimal
    tc_from: Decimal
    tc_below: Decimal


class LipidChartRow(_Strict):
    hypertension: bool
    risk_factors_from: int = Field(ge=0)
    risk_factors_to: int = Field(ge=0)
    strata: list[str]


class LipidRiskFactors(_Strict):
    smoker: bool = True
    hdl_c_below: Decimal
    age_male_from: PositiveInt
    age_female_from: PositiveInt


class LipidStratum(_Strict):
    """A stratum decided before the chart (ASCVD, high risk); first match wins."""

    stratum: str
    when: Condition


class LipidStratification(_Strict):
    source: str
    strata: list[LipidStratum]
    chart_bands: list[LipidBand]
    chart_rows: list[LipidChartRow]
    below_chart: str
    risk_factors: LipidRiskFactors
    ldl_targets: dict[str, Decimal]

    @model_validator(mode="after")
    def _consistent(self) -> LipidStratification:
        known = set(self.ldl_targets)
        named = {s.stratum for s in self.strata} | {self.below_chart}
        named |= {s for row in self.chart_rows for s in row.strata}
        if named - known:
            raise ValueError(f"strata without an LDL-C target: {sorted(named - known)}")
        for row in self.chart_rows:
            if len(row.strata) != len(self.chart_bands):
                raise ValueError("every chart row needs one stratum per chart band")
        return self


class Targets(_Strict):
    source: str
    blood_pressure: list[BloodPressureBand] = Field(min_length=1)
    glucose: GlucoseTargets
    lipids: LipidStratification


class StandardManagement(_Strict):
    min_encounters: PositiveInt
    window_days: PositiveInt


class HeartsControl(_Strict):
    """WHO HEARTS: BP below these at the last visit in the window, among patients registered long enough."""

    systolic_below: Decimal
    diastolic_below: Decimal
    last_visit_within_days: PositiveInt
    registered_more_than_days: PositiveInt


class MedicationIndicators(_Strict):
    """PATHWAY.md §7 additions to the team indicators: 规律服药率, 他汀使用率, 降压药联合治疗率."""

    source: str = Field(min_length=1)
    adherence_window_days: PositiveInt = Field(description="规律服药率: adherence recorded this recent")
    statin_strata: list[str] = Field(min_length=1, description="他汀使用率: the lipid strata counted")
    combination_min_classes: PositiveInt = Field(description="联合治疗: at least this many classes")


class IndicatorDefinitions(_Strict):
    """PATHWAY.md §6: the windows and cut-offs of the team indicators (绩效考核)."""

    source: str
    control_window_days: PositiveInt = Field(description="the latest encounter counts if this recent")
    standard_management: StandardManagement
    hearts: HeartsControl
    medication: MedicationIndicators | None = None  # §7; None under a pack that knows no treatment
