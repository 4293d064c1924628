"""A reassessment reads only the recent part of a long self-measured stream (pathway.clinical.horizon): for
any history and any moment, the snapshot and the assessment of the recent part are those of the
whole history."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pathway.clinical.history import Encounter, Measurement, PatientHistory
from pathway.clinical.horizon import reading_horizon, recent
from pathway.clinical.vocabulary import Condition, ReadingKind, ReadingSource, Sex
from rules.registry import LoadedPack
from tests.builders import AS_OF, bp, lab, patient, visit
from tests.conftest import Pathway

# Around every window of the pack: minutes to two years back, and a little into the future.
_OFFSETS = st.one_of(
    st.integers(min_value=-30, max_value=3 * 24 * 60).map(lambda m: timedelta(minutes=m)),
    st.integers(min_value=0, max_value=730 * 24).map(lambda h: timedelta(hours=h)),
    st.integers(min_value=6 * 24, max_value=91 * 24).map(lambda h: timedelta(hours=h)),  # short to long
    st.sampled_from([timedelta(days=d) for d in (7, 90, 180, 365)]),
)
_SOURCES = st.sampled_from(list(ReadingSource))
_VALUES = {
    ReadingKind.FPG: (3.0, 25.0),
    ReadingKind.PPG2H: (3.0, 25.0),
    ReadingKind.RPG: (3.0, 30.0),
    ReadingKind.HBA1C: (5.0, 12.0),
    ReadingKind.TC: (3.0, 9.0),
    ReadingKind.LDL_C: (1.0, 6.0),
    ReadingKind.HDL_C: (0.6, 2.5),
    ReadingKind.TG: (0.5, 6.0),
    ReadingKind.EGFR: (20.0, 120.0),
    ReadingKind.UACR: (1.0, 300.0),
}


@st.composite
def _reading(draw: st.DrawFn) -> Measurement:
    at = AS_OF - draw(_OFFSETS)
    source = draw(_SOURCES)
    kind = draw(st.sampled_from([ReadingKind.BP, *_VALUES]))
    if kind is ReadingKind.BP:
        systolic = draw(st.integers(min_value=95, max_value=215))
        return bp(systolic, draw(st.integers(min_value=55, max_value=min(systolic - 20, 130))), at, source)
    low, high = _VALUES[kind]
    return lab(kind, round(draw(st.floats(min_value=low, max_value=high)), 1), at, source)


@st.composite
def _history(draw: st.DrawFn) -> PatientHistory:
    conditions = draw(st.sets(st.sampled_from(list(Condition)), min_size=1))
    visits: list[Encounter] = [
        visit(AS_OF - draw(_OFFSETS), *draw(st.lists(_reading(), max_size=3)))
        for _ in range(draw(st.integers(0, 3)))
    ]
    return PatientHistory(
        profile=patient(*conditions),
        encounters=tuple(visits),
        readings=tuple(sorted(draw(st.lists(_reading(), max_size=60)), key=lambda r: r.at)),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=_history(), later=st.sampled_from([timedelta(0), timedelta(hours=6), timedelta(days=30)]))
def test_the_recent_history_gives_the_same_snapshot_and_assessment(
    pathway: Pathway, default_pack: LoadedPack, history: PatientHistory, later: timedelta
) -> None:
    as_of: datetime = AS_OF + later
    part = recent(history, as_of, reading_horizon(default_pack.pack.snapshot))

    whole, trimmed = pathway.snapshot(history, as_of), pathway.snapshot(part, as_of)
    assert trimmed.facts == whole.facts
    assert trimmed.anchors == whole.anchors
    assert trimmed.encounters == whole.encounters
    assert pathway.assess(part, as_of).to_json() == pathway.assess(history, as_of).to_json()


def test_a_year_of_wearable_readings_shrinks_to_the_horizon_and_the_latest_of_other_kinds(
    default_pack: LoadedPack,
) -> None:
    horizon = reading_horizon(default_pack.pack.snapshot)
    stream = [bp(138, 86, AS_OF - timedelta(hours=6 * n), ReadingSource.WEARABLE) for n in range(4 * 365)]
    old_ldl = lab(ReadingKind.LDL_C, 3.1, AS_OF - timedelta(days=300))
    history = PatientHistory(profile=patient(Condition.HYPERTENSION), readings=(old_ldl, *reversed(stream)))

    kept = recent(history, AS_OF, horizon).readings

    since = AS_OF - horizon.every
    assert old_ldl in kept  # the latest LDL-C, older than every window, still dates the lipid panel
    assert all(r.at >= since for r in kept if r.kind is ReadingKind.BP)  # BP has readings inside it
    assert len(kept) == 1 + sum(1 for r in stream if r.at >= since)
    assert len(kept) < len(stream) // 30


def test_ninety_days_of_cgm_shrink_to_the_short_window_and_the_peak_before_it(
    pathway: Pathway, default_pack: LoadedPack
) -> None:
    horizon = reading_horizon(default_pack.pack.snapshot)
    quarter_hours = 96 * 90
    stream = [
        lab(
            ReadingKind.RPG,
            round(6.0 + (n % 37) / 10, 1),
            AS_OF - timedelta(minutes=15 * n),
            ReadingSource.CGM,
        )
        for n in range(quarter_hours)
    ]
    fasting = [
        lab(ReadingKind.FPG, round(5.5 + (d % 9) / 10, 1), AS_OF - timedelta(days=d), ReadingSource.HOME)
        for d in range(90)
    ]
    spikes = [  # higher than anything in the short window: the long window's maxima
        lab(ReadingKind.RPG, 15.2, AS_OF - timedelta(days=40, minutes=7), ReadingSource.CGM),
        lab(ReadingKind.FPG, 7.9, AS_OF - timedelta(days=60, hours=1), ReadingSource.HOME),
    ]
    history = PatientHistory(
        profile=patient(Condition.DIABETES, age=31, sex=Sex.FEMALE, pregnant=True),
        readings=tuple(sorted([*stream, *fasting, *spikes], key=lambda r: r.at)),
    )

    part = recent(history, AS_OF, horizon)

    since = AS_OF - horizon.every
    older = {(r.kind, r.value, r.at) for r in part.readings if r.at < since}
    assert older == {(r.kind, r.value, r.at) for r in spikes}
    assert len(part.readings) < len(history.readings) // 8
    whole, trimmed = pathway.snapshot(history, AS_OF), pathway.snapshot(part, AS_OF)
    assert trimmed.facts == whole.facts
    assert (whole.facts["recent_nonfasting_glucose_max"], whole.facts["recent_fpg_max"]) == (15.2, 7.9)
