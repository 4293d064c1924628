"""pathway.teams.workbench: chart series, the pack's glucose bands, the tier timeline, month ends."""

from __future__ import annotations

from datetime import datetime, timedelta

from api.web.chart_values import (
    GLUCOSE_MAX,
    TierMark,
    bp_points,
    glucose_bands,
    tier_spans,
    value_points,
)
from pathway.clinical.clock import CLINIC_TZ
from pathway.clinical.conditions import AllOf, AnyOf, Comparison, comparisons
from pathway.clinical.parameters import GlucoseTargets
from pathway.clinical.vocabulary import GLUCOSE_KINDS, ReadingSource
from pathway.teams.indicators import month_ends
from rules.registry import LoadedPack
from tests.builders import AS_OF, bp, days_before, glucose, history, patient, visit


def test_bp_points_keep_clinic_and_home_readings_apart_within_the_window() -> None:
    record = history(
        patient(),
        encounters=(visit(days_before(40), bp(150, 95)), visit(days_before(400), bp(160, 100))),
        readings=(
            bp(138, 86, days_before(2), ReadingSource.WEARABLE),
            bp(136, 84, days_before(1), ReadingSource.HOME),
        ),
    )
    points = bp_points(record, days_before(365), AS_OF)
    assert [(p.systolic, p.diastolic, p.source) for p in points] == [
        (150.0, 95.0, "clinic"),
        (138.0, 86.0, "wearable"),
        (136.0, 84.0, "home"),
    ]


def test_glucose_bands_are_the_thresholds_of_the_rules_that_read_glucose_extremes(
    default_pack: LoadedPack,
) -> None:
    pack = default_pack.pack
    bands = glucose_bands(((r.id, r.when) for r in pack.rules), pack.targets.glucose, pack.snapshot)
    hyper_rules = {r.id for r in pack.rules if any(c.fact == GLUCOSE_MAX for c in comparisons(r.when))}
    assert {t.rule_id for t in bands.hyper} <= hyper_rules
    assert bands.hypo_edge is not None
    assert bands.hyper_edge is not None
    assert bands.fasting_below == float(pack.targets.glucose.fasting_below)
    edge = bands.hypo_edge.value
    # The edge belongs where the pack's rules put it, whatever the value: clinic readings use the
    # encounter rule's operator, self-measured ones the self-monitored rules'.
    assert bands.band_of(edge, "clinic") == ("hypo" if bands.hypo_edge.op == "lte" else None)
    assert bands.band_of(edge - 0.1, "home") == "hypo"
    assert bands.band_of(bands.hyper_edge.value, "lab") == "hyper"
    assert bands.band_of(bands.fasting_below, "clinic") is None


def test_glucose_bands_follow_each_operator_exactly(default_pack: LoadedPack) -> None:
    rules: list[tuple[str, AllOf | AnyOf | Comparison]] = [
        ("enc", Comparison(fact="acute_encounter_glucose_min", lte=4.0)),
        ("self", AllOf(all=[Comparison(fact="self_monitored_glucose_min", lt=3.5)])),
        ("self.ignored", Comparison(fact="self_monitored_glucose_min", gte=3.5)),
        ("high", Comparison(fact="acute_glucose_max", gte=15.0)),
        ("higher", Comparison(fact="acute_glucose_max", gte=30.0)),
    ]
    targets = GlucoseTargets(fasting_below=6, non_fasting_below=9, hba1c_below=7, hba1c_max_age_days=100)
    windows = default_pack.pack.snapshot.model_copy(
        update={
            "encounter_glucose_sources": [ReadingSource.CLINIC, ReadingSource.LAB],
            "self_monitored_glucose_sources": [ReadingSource.HOME, ReadingSource.CGM],
        }
    )
    bands = glucose_bands(rules, targets, windows)
    assert [(t.value, t.op, t.rule_id) for t in bands.hypo] == [(3.5, "lt", "self"), (4.0, "lte", "enc")]
    assert bands.hyper_edge is not None
    assert (bands.hyper_edge.value, bands.hyper_edge.rule_id) == (15.0, "high")
    assert bands.rule_ids == ["self", "enc", "high", "higher"]
    assert bands.band_of(4.0, "clinic") == "hypo"
    assert bands.band_of(4.0, "home") is None
    assert bands.band_of(3.5, "home") is None
    assert bands.band_of(3.4, "cgm") == "hypo"
    assert bands.band_of(15.0, "home") == "hyper"
    assert bands.band_of(14.9, "clinic") is None
    points = value_points(
        history(patient(), readings=(glucose(3.9, days_before(1), ReadingSource.CLINIC),)),
        sorted(GLUCOSE_KINDS),
        days_before(10),
        AS_OF,
        bands.band_of,
    )
    assert [(p.value, p.band) for p in points] == [(3.9, "hypo")]


def _mark(days: float, tier: str) -> TierMark:
    return TierMark(days_before(days), tier, "home", (f"rule.{tier}",), "2020.4")


def test_the_tier_timeline_has_one_span_per_change_and_starts_with_the_tier_in_force() -> None:
    marks = [
        _mark(400, "yellow"),
        _mark(200, "yellow"),
        _mark(100, "red"),
        _mark(90, "red"),
        _mark(10, "blue"),
    ]
    since = days_before(365)
    spans = tier_spans(marks, since, AS_OF)
    assert [(s.tier, s.start, s.end) for s in spans] == [
        ("yellow", since, days_before(100)),
        ("red", days_before(100), days_before(10)),
        ("blue", days_before(10), AS_OF),
    ]
    assert tier_spans([], since, AS_OF) == []
    assert [s.tier for s in tier_spans([_mark(-1, "red")], since, AS_OF)] == []  # after the window


def test_month_ends_are_the_last_instants_of_past_months_then_now() -> None:
    now = datetime(2026, 3, 3, 9, 30, tzinfo=CLINIC_TZ)
    moments = month_ends(now, 4, CLINIC_TZ)
    assert moments[-1] == now
    assert [m.date().isoformat() for m in moments[:-1]] == ["2025-12-31", "2026-01-31", "2026-02-28"]
    assert all(
        m + timedelta(microseconds=1)
        == m.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        for m in moments[:-1]
    )
