"""Medication and treatment (PATHWAY.md §7): the classes, a prescription as the rules see it, and the
pack's table of groups and ATC codes.

Which class belongs to which group (降压药 / 降糖药 / 调脂药, the diuretics) and which ATC code names
which classes are pack data (``medication`` block, with its ``source``); the class codes themselves
are vocabulary, like the reading kinds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

from pathway.clinical.vocabulary import Condition


class MedicationClass(StrEnum):
    # antihypertensive (降压药)
    ACEI = "acei"
    ARB = "arb"
    ARNI = "arni"
    CCB = "ccb"
    THIAZIDE = "thiazide"
    LOOP_DIURETIC = "loop_diuretic"
    MRA = "mra"
    BETA_BLOCKER = "beta_blocker"
    ALPHA_BLOCKER = "alpha_blocker"
    OTHER_ANTIHYPERTENSIVE = "other_antihypertensive"
    # glucose-lowering (降糖药)
    METFORMIN = "metformin"
    SULFONYLUREA = "sulfonylurea"
    GLINIDE = "glinide"
    DPP4 = "dpp4"
    SGLT2 = "sglt2"
    GLP1 = "glp1"
    TZD = "tzd"
    AGI = "agi"
    INSULIN = "insulin"
    # lipid-lowering (调脂药)
    STATIN = "statin"
    EZETIMIBE = "ezetimibe"
    PCSK9 = "pcsk9"
    FIBRATE = "fibrate"
    OMEGA3 = "omega3"


class MedicationGroup(StrEnum):
    ANTIHYPERTENSIVE = "antihypertensive"  # 降压药
    GLUCOSE_LOWERING = "glucose_lowering"  # 降糖药
    LIPID_LOWERING = "lipid_lowering"  # 调脂药


class Adherence(StrEnum):
    """服药依从性 as a 公卫 follow-up records it."""

    REGULAR = "regular"  # 规律
    INTERMITTENT = "intermittent"  # 间断
    NONE = "none"  # 不服药


@dataclass(frozen=True, slots=True)
class Prescription:
    """One prescription (a single-pill combination is one prescription with several classes).

    ``recorded_at`` is when the store learnt of it (or of its latest change): a replay as of an
    earlier moment sees only what was known then.
    """

    classes: tuple[MedicationClass, ...]
    drug: str
    started_on: date
    supply_days: int
    dose: str | None = None
    stopped_on: date | None = None
    recorded_at: datetime | None = None
    source_id: str | None = None
    traceability_codes: tuple[str, ...] = ()

    @property
    def supply_end(self) -> date:
        """``started_on`` + ``supply_days`` (PATHWAY.md §7)."""
        return self.started_on + timedelta(days=self.supply_days)


class SupplyWatch(BaseModel):
    """Classes whose lapsed supply matters for a patient with one of ``conditions`` (a group's
    classes and/or listed classes)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    group: MedicationGroup | None = None
    classes: list[MedicationClass] = Field(default_factory=list)
    conditions: list[Condition] = Field(min_length=1)


class MedicationWindows(BaseModel):
    """The windows of the §7 derived facts (PATHWAY.md §7), each a pack number with its source."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(min_length=1)
    lapse_days: PositiveInt = Field(description="a supply lapsed more than this counts as not taken")
    known_window_days: PositiveInt = Field(description="a medication review this recent makes it known")
    adherence_window_days: PositiveInt = Field(description="latest_adherence: encounters this recent")
    adverse_window_days: PositiveInt = Field(description="adverse_reaction_run: encounters this recent")
    statin_run_gap_days: PositiveInt = Field(description="a longer gap between supplies breaks the run")
    refill_horizon_days: PositiveInt = Field(description="supplies ending this soon get a refill review")
    max_supply_days: PositiveInt = Field(description="the longest supply a prescription may carry")
    supply_watch: list[SupplyWatch] = Field(min_length=1)


class MedicationTable(BaseModel):
    """The pack's ``medication`` block: the classes of each group, the diuretics, and the ATC map
    (a code maps to the classes of its longest listed prefix; a combination code to all its parts)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(min_length=1)
    groups: dict[MedicationGroup, list[MedicationClass]]
    diuretics: list[MedicationClass]
    atc: dict[str, list[MedicationClass]] = Field(description="ATC code prefix → the classes it names")
    windows: MedicationWindows | None = None

    @model_validator(mode="after")
    def _coherent(self) -> MedicationTable:
        grouped = [c for classes in self.groups.values() for c in classes]
        if sorted(grouped) != sorted(set(grouped)) or set(grouped) != set(MedicationClass):
            raise ValueError("medication.groups: every class belongs to exactly one group")
        if not set(self.diuretics) <= set(self.groups.get(MedicationGroup.ANTIHYPERTENSIVE, [])):
            raise ValueError("medication.diuretics: diuretics are antihypertensive classes")
        for prefix, classes in self.atc.items():
            if not prefix or prefix != prefix.upper() or not classes:
                raise ValueError(f"medication.atc.{prefix}: an upper-case prefix naming at least one class")
        return self

    def classes_of_atc(self, code: str) -> tuple[MedicationClass, ...] | None:
        """The classes an ATC code names (longest matching prefix), or None for an unknown code."""
        code = code.strip().upper()
        matches = [prefix for prefix in self.atc if code.startswith(prefix)]
        if not matches:
            return None
        return tuple(self.atc[max(matches, key=len)])

    def watched(self, watch: SupplyWatch) -> frozenset[MedicationClass]:
        """The classes a supply watch covers."""
        found = set(watch.classes)
        if watch.group is not None:
            found |= set(self.groups.get(watch.group, []))
        return frozenset(found)

    def group_of(self, medication_class: MedicationClass) -> MedicationGroup:
        return next(group for group, classes in self.groups.items() if medication_class in classes)
