"""What a patient's charts on the workbench show, as plain values: the readings, the bands and the tiers.

Pure functions of stored values (a patient's history, assessment records, the pack's parameters and
rule conditions); no database, no clock, no drawing (:mod:`api.web.charts` draws them). Every band
drawn on a chart comes from the pack: the patient's BP target is the one the rules saw (the
assessment's facts), the glucose hypo/hyper bands are the thresholds of the pack's own glucose rules
(found by the facts they read), the LDL-C target is the patient's stratum's. Nothing here holds a
clinical number.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from pathway.clinical.conditions import AllOf, AnyOf, Comparison, comparisons, holds
from pathway.clinical.history import Measurement, PatientHistory
from pathway.clinical.parameters import GlucoseTargets, SnapshotWindows
from pathway.clinical.vocabulary import GLUCOSE_KINDS, ReadingKind

# The facts the pack's glucose rules read: below a threshold of the first two is hypoglycaemia
# (a visit's value, a self-measured one); at or above a threshold of the last, hyperglycaemia.
ENCOUNTER_GLUCOSE_MIN = "acute_encounter_glucose_min"
SELF_MONITORED_GLUCOSE_MIN = "self_monitored_glucose_min"
GLUCOSE_MAX = "acute_glucose_max"
_LOW_OPS = ("lt", "lte")
_HIGH_OPS = ("gt", "gte")

AnyCondition = AllOf | AnyOf | Comparison


# --- A patient's charts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BpPoint:
    at: datetime
    systolic: float
    diastolic: float
    source: str  # clinic | home | wearable (clinic readings include those taken at a visit)


@dataclass(frozen=True)
class ValuePoint:
    at: datetime
    value: float
    kind: str
    source: str
    band: str | None = None  # "hypo" | "hyper" for glucose outside the pack's bands


@dataclass(frozen=True)
class BpTarget:
    """The patient's targets as the rules saw them (office, and home if the pack gives one)."""

    systolic: float | None
    diastolic: float | None
    home_systolic: float | None
    home_diastolic: float | None


@dataclass(frozen=True)
class Threshold:
    value: float
    op: str  # lt | lte | gt | gte, as the pack's rule says
    rule_id: str


@dataclass(frozen=True)
class GlucoseBands:
    """The pack's hypo and hyper thresholds and glucose targets, with the rules they come from."""

    hypo: list[Threshold]
    hyper: list[Threshold]
    fasting_below: float
    non_fasting_below: float
    encounter_sources: frozenset[str]
    self_monitored_sources: frozenset[str]
    _hypo_encounter: tuple[Comparison, ...] = ()
    _hypo_self: tuple[Comparison, ...] = ()
    _hyper: tuple[Comparison, ...] = ()

    @property
    def rule_ids(self) -> list[str]:
        """The rules the bands come from, each once."""
        return list(dict.fromkeys(t.rule_id for t in (*self.hypo, *self.hyper)))

    @property
    def hypo_edge(self) -> Threshold | None:
        """The highest hypo threshold: the upper edge of the hypo band."""
        return max(self.hypo, key=lambda t: (t.value, t.op == "lte"), default=None)

    @property
    def hyper_edge(self) -> Threshold | None:
        """The lowest hyper threshold: the lower edge of the hyper band."""
        return min(self.hyper, key=lambda t: (t.value, t.op != "gte"), default=None)

    def band_of(self, value: float, source: str) -> str | None:
        """ "hypo" or "hyper" if a glucose rule of the pack would count this value so, else None."""
        lows = self._hypo_self if source in self.self_monitored_sources else ()
        if source in self.encounter_sources:
            lows = self._hypo_encounter
        if any(holds(c, {c.fact: value}) for c in lows):
            return "hypo"
        if any(holds(c, {c.fact: value}) for c in self._hyper):
            return "hyper"
        return None


@dataclass(frozen=True)
class LipidTarget:
    stratum: str | None
    ldl_below: float | None


@dataclass(frozen=True)
class TierSpan:
    """The patient's tier from ``start`` to ``end`` (the next change, or the chart's end)."""

    tier: str
    level: str
    start: datetime
    end: datetime
    rule_ids: tuple[str, ...]
    pack_version: str


@dataclass(frozen=True)
class TierMark:
    """One stored assessment: when, which tier, and the rules behind it."""

    at: datetime
    tier: str
    level: str
    rule_ids: tuple[str, ...]
    pack_version: str


@dataclass(frozen=True)
class PatientCharts:
    since: datetime
    until: datetime
    bp: list[BpPoint]
    glucose: list[ValuePoint]
    ldl: list[ValuePoint]
    bp_target: BpTarget
    glucose_bands: GlucoseBands
    lipid_target: LipidTarget
    tiers: list[TierSpan]


def _all_readings(history: PatientHistory) -> list[Measurement]:
    """Every reading of the history: loose ones and those taken at a visit (clinic)."""
    at_visits = [r for e in history.encounters for r in e.readings]
    return sorted([*history.readings, *at_visits], key=lambda r: r.at)


def bp_points(history: PatientHistory, since: datetime, until: datetime) -> list[BpPoint]:
    return [
        BpPoint(r.at, float(r.systolic), float(r.diastolic), r.source.value)
        for r in _all_readings(history)
        if r.kind is ReadingKind.BP
        and r.systolic is not None
        and r.diastolic is not None
        and since <= r.at <= until
    ]


def value_points(
    history: PatientHistory,
    kinds: Iterable[ReadingKind],
    since: datetime,
    until: datetime,
    band_of: Callable[[float, str], str | None] | None = None,
) -> list[ValuePoint]:
    wanted = set(kinds)
    points = []
    for r in _all_readings(history):
        if r.kind in wanted and r.value is not None and since <= r.at <= until:
            value = float(r.value)
            band = band_of(value, r.source.value) if band_of is not None else None
            points.append(ValuePoint(r.at, value, r.kind.value, r.source.value, band))
    return points


def bp_target(facts: Mapping[str, object]) -> BpTarget:
    def number(name: str) -> float | None:
        value = facts.get(name)
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    return BpTarget(
        number("bp_target_sbp"),
        number("bp_target_dbp"),
        number("home_bp_target_sbp"),
        number("home_bp_target_dbp"),
    )


def lipid_target(facts: Mapping[str, object]) -> LipidTarget:
    stratum, target = facts.get("lipid_stratum"), facts.get("ldl_target")
    return LipidTarget(
        stratum if isinstance(stratum, str) else None,
        float(target) if isinstance(target, int | float) and not isinstance(target, bool) else None,
    )


def glucose_bands(
    rules: Iterable[tuple[str, AnyCondition]], targets: GlucoseTargets, windows: SnapshotWindows
) -> GlucoseBands:
    """The hypo/hyper thresholds of the pack's rules ``(rule id, condition)`` that read glucose extremes."""
    hypo: list[Threshold] = []
    hyper: list[Threshold] = []
    low_encounter: list[Comparison] = []
    low_self: list[Comparison] = []
    high: list[Comparison] = []
    for rule_id, condition in rules:
        for c in comparisons(condition):
            if not isinstance(c.operand, int | float) or isinstance(c.operand, bool):
                continue
            if c.fact in (ENCOUNTER_GLUCOSE_MIN, SELF_MONITORED_GLUCOSE_MIN) and c.op in _LOW_OPS:
                hypo.append(Threshold(float(c.operand), c.op, rule_id))
                (low_encounter if c.fact == ENCOUNTER_GLUCOSE_MIN else low_self).append(c)
            elif c.fact == GLUCOSE_MAX and c.op in _HIGH_OPS:
                hyper.append(Threshold(float(c.operand), c.op, rule_id))
                high.append(c)
    return GlucoseBands(
        hypo=_distinct(hypo),
        hyper=_distinct(hyper),
        fasting_below=float(targets.fasting_below),
        non_fasting_below=float(targets.non_fasting_below),
        encounter_sources=frozenset(s.value for s in windows.encounter_glucose_sources),
        self_monitored_sources=frozenset(s.value for s in windows.self_monitored_glucose_sources),
        _hypo_encounter=tuple(low_encounter),
        _hypo_self=tuple(low_self),
        _hyper=tuple(high),
    )


def _distinct(thresholds: list[Threshold]) -> list[Threshold]:
    seen: dict[tuple[float, str], Threshold] = {}
    for t in thresholds:
        seen.setdefault((t.value, t.op), t)
    return sorted(seen.values(), key=lambda t: t.value)


def tier_spans(marks: Iterable[TierMark], since: datetime, until: datetime) -> list[TierSpan]:
    """The tier over [since, until] from the stored assessments, one span per change of tier.

    The tier at ``since`` is that of the last assessment before it (if it is among ``marks``).
    """
    ordered = sorted((m for m in marks if m.at <= until), key=lambda m: m.at)
    before = [m for m in ordered if m.at < since]
    inside = [m for m in ordered if m.at >= since]
    starts = ([before[-1]] if before else []) + inside
    spans: list[TierSpan] = []
    for mark in starts:
        start = max(mark.at, since)
        if spans and spans[-1].tier == mark.tier:
            continue
        if spans:
            last = spans[-1]
            spans[-1] = TierSpan(last.tier, last.level, last.start, start, last.rule_ids, last.pack_version)
        spans.append(TierSpan(mark.tier, mark.level, start, until, mark.rule_ids, mark.pack_version))
    return spans


def patient_charts(
    history: PatientHistory,
    facts: Mapping[str, object],
    bands: GlucoseBands,
    marks: Iterable[TierMark],
    since: datetime,
    until: datetime,
) -> PatientCharts:
    return PatientCharts(
        since=since,
        until=until,
        bp=bp_points(history, since, until),
        glucose=value_points(history, sorted(GLUCOSE_KINDS), since, until, bands.band_of),
        ldl=value_points(history, (ReadingKind.LDL_C,), since, until),
        bp_target=bp_target(facts),
        glucose_bands=bands,
        lipid_target=lipid_target(facts),
        tiers=tier_spans(marks, since, until),
    )
