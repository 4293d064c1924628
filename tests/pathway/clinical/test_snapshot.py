"""Derived facts of PATHWAY.md §2–3 at their exact boundaries, through ``pathway.clinical.snapshot``."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from pathway.clinical.clock import CLINIC_TZ
from pathway.clinical.history import Encounter, Measurement, PatientHistory, PatientProfile
from pathway.clinical.snapshot import FACT_TYPES
from pathway.clinical.tiers import RiskTier, TaskKind
from pathway.clinical.visits import CONTROLLED, UNCONTROLLED, UNKNOWN
from pathway.clinical.vocabulary import Complication, Condition, ReadingKind, ReadingSource, Sex, Symptom
from tests.builders import AS_OF, bp, days_before, glucose, history, hours_before, lab, patient, visit
from tests.conftest import Pathway

HOME = ReadingSource.HOME
WEARABLE = ReadingSource.WEARABLE
CLINIC = ReadingSource.CLINIC
LAB = ReadingSource.LAB
CGM = ReadingSource.CGM
HTN = Condition.HYPERTENSION
DM = Condition.DIABETES
MINUTE = timedelta(minutes=1)


def _home_bps(
    count: int,
    days: int,
    values: tuple[tuple[float, float], ...] = ((130, 80),),
    source: ReadingSource = HOME,
) -> tuple[Measurement, ...]:
    """``count`` home readings spread over ``days`` distinct clinic-calendar days, newest first.

    Readings are taken at 08:00, 07:00, 06:00… (AS_OF is 09:00) on AS_OF's day and the days before;
    values cycle through ``values``.
    """
    return tuple(
        bp(*values[i % len(values)], at=hours_before(1 + i // days + 24 * (i % days)), source=source)
        for i in range(count)
    )


def _hypertensive(*encounters: Encounter, age: int = 60) -> PatientHistory:
    return history(patient(HTN, age=age), encounters=encounters)


# --- Office BP -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "present"),
    [
        pytest.param(timedelta(days=1), True, id="1-day"),
        pytest.param(timedelta(days=90), True, id="exactly-90-days"),
        pytest.param(timedelta(days=90) + MINUTE, False, id="90-days-1-min"),
    ],
)
def test_office_bp_counts_only_within_90_days(pathway: Pathway, age: timedelta, present: bool) -> None:
    facts = pathway.snapshot(_hypertensive(visit(AS_OF - age, bp(150, 95)))).facts

    if present:
        assert (facts["office_sbp"], facts["office_dbp"]) == (150.0, 95.0)
        assert facts["office_bp_age_days"] == age.total_seconds() / 86400
    else:
        assert "office_sbp" not in facts
        assert "office_dbp" not in facts
        assert "office_bp_age_days" not in facts


def test_office_bp_is_the_unrounded_mean_of_the_latest_encounter_with_bp(pathway: Pathway) -> None:
    facts = pathway.snapshot(
        _hypertensive(
            visit(days_before(20), bp(200, 120)),
            visit(days_before(10), bp(179, 100), bp(180, 109)),
            visit(days_before(2), glucose(6.0)),  # the newest encounter has no BP: skipped
        )
    ).facts

    assert (facts["office_sbp"], facts["office_dbp"]) == (179.5, 104.5)
    assert facts["bp_crisis_confirmed"] is False  # 179.5 is not >= 180


def test_office_bp_is_absent_when_the_latest_bp_encounter_is_older_than_90_days(pathway: Pathway) -> None:
    facts = pathway.snapshot(
        _hypertensive(visit(days_before(120), bp(150, 95)), visit(days_before(91)))
    ).facts

    assert "office_sbp" not in facts


# --- Home BP mean ------------------------------------------------------------------------------

HOME_MEAN_CASES = [
    pytest.param(_home_bps(6, 3, ((130, 80), (141, 91))), (135.5, 85.5), id="6-readings-on-3-days"),
    pytest.param(_home_bps(5, 3), None, id="5-readings-on-3-days"),
    pytest.param(_home_bps(6, 2), None, id="6-readings-on-2-days"),
    pytest.param(
        tuple(replace(r, at=r.at.astimezone(UTC)) for r in _home_bps(6, 2)),
        None,
        id="6-readings-on-2-shanghai-days-stamped-in-utc-on-3-utc-dates",
    ),
    pytest.param(_home_bps(12, 7, ((134, 84),)), (134.0, 84.0), id="12-readings-on-7-days"),
    pytest.param(_home_bps(3, 3) + _home_bps(3, 3, source=WEARABLE), (130.0, 80.0), id="home-plus-wearable"),
    pytest.param(
        _home_bps(5, 3) + (bp(130, 80, at=days_before(4), source=CLINIC),), None, id="clinic-does-not-count"
    ),
    pytest.param(
        _home_bps(5, 3) + (bp(130, 80, at=days_before(4), source=LAB),), None, id="lab-does-not-count"
    ),
    pytest.param(
        _home_bps(5, 3) + (bp(130, 80, at=days_before(7), source=HOME),), (130.0, 80.0), id="7-days"
    ),
    pytest.param(
        _home_bps(5, 3) + (bp(130, 80, at=days_before(7) - MINUTE, source=HOME),),
        None,
        id="7-days-1-min-ignored",
    ),
]


@pytest.mark.parametrize(("readings", "mean"), HOME_MEAN_CASES)
def test_home_bp_mean_needs_6_readings_on_3_days_within_7_days(
    pathway: Pathway, readings: tuple[Measurement, ...], mean: tuple[float, float] | None
) -> None:
    facts = pathway.snapshot(history(patient(HTN), readings=readings)).facts

    if mean is None:
        assert "home_sbp_mean" not in facts
        assert "home_dbp_mean" not in facts
    else:
        assert (facts["home_sbp_mean"], facts["home_dbp_mean"]) == mean


def test_home_bp_reading_count_counts_only_home_and_wearable_in_the_window(pathway: Pathway) -> None:
    readings = (
        bp(130, 80, at=hours_before(1), source=HOME),
        bp(130, 80, at=hours_before(2), source=WEARABLE),
        bp(130, 80, at=hours_before(3), source=CLINIC),
        bp(130, 80, at=days_before(7) - MINUTE, source=HOME),
    )

    assert pathway.snapshot(history(patient(HTN), readings=readings)).facts["home_bp_reading_count"] == 2


# --- Crisis BP ---------------------------------------------------------------------------------

CRISIS_CASES = [
    pytest.param(
        (bp(186, 102, hours_before(1), HOME), bp(184, 100, hours_before(1) + timedelta(minutes=5), HOME)),
        True,
        id="two-home-readings-5-min-apart",
    ),
    pytest.param(
        (
            bp(186, 102, hours_before(1), HOME),
            bp(184, 100, hours_before(1) + timedelta(minutes=4, seconds=59), HOME),
        ),
        False,
        id="two-home-readings-4-min-59-s-apart",
    ),
    pytest.param(
        (bp(170, 110, hours_before(3), WEARABLE), bp(186, 90, hours_before(1), HOME)),
        True,
        id="wearable-dbp-110-and-home-sbp-186",
    ),
    pytest.param(
        (bp(186, 102, hours_before(24), HOME), bp(186, 102, hours_before(1), HOME)),
        True,
        id="oldest-exactly-24-h",
    ),
    pytest.param(
        (bp(186, 102, hours_before(24) - MINUTE, HOME), bp(186, 102, hours_before(1), HOME)),
        False,
        id="oldest-24-h-1-min",
    ),
    pytest.param(
        (bp(179, 109, hours_before(2), HOME), bp(186, 102, hours_before(1), HOME)),
        False,
        id="179-109-is-not-a-crisis-reading",
    ),
    pytest.param(
        (
            bp(186, 102, hours_before(1), HOME),
            bp(186, 102, hours_before(1) + timedelta(minutes=3), HOME),
            bp(186, 102, hours_before(1) + timedelta(minutes=6), HOME),
        ),
        True,
        id="three-readings-first-and-last-6-min-apart",
    ),
    pytest.param(
        (bp(186, 102, hours_before(1), CLINIC),),
        True,
        id="clinic-crisis-is-an-office-crisis",
    ),
]


@pytest.mark.parametrize(("readings", "confirmed"), CRISIS_CASES)
def test_home_crisis_is_confirmed_by_two_readings_at_least_5_minutes_apart(
    pathway: Pathway, readings: tuple[Measurement, ...], confirmed: bool
) -> None:
    facts = pathway.snapshot(history(patient(HTN), readings=readings)).facts

    assert facts["bp_crisis_confirmed"] is confirmed
    assert facts["bp_crisis_unconfirmed"] is not confirmed
    assert facts["bp_crisis_recent"] is True


def test_unconfirmed_crisis_anchors_a_bp_recheck_2_hours_after_the_reading(pathway: Pathway) -> None:
    reading_at = hours_before(3)
    case = history(
        patient(HTN),
        encounters=(visit(days_before(10), bp(128, 78)),),
        readings=(bp(186, 102, at=reading_at, source=HOME),),
    )

    snapshot = pathway.snapshot(case)
    assessment = pathway.assess(case)

    assert snapshot.anchors["unconfirmed_crisis_reading"] == reading_at
    recheck = [t for t in assessment.tasks if t.kind is TaskKind.BP_RECHECK]
    assert len(recheck) == 1
    assert recheck[0].due == reading_at + timedelta(hours=2)
    assert recheck[0].priority == 2
    assert recheck[0].rule_id == "bp.crisis.unconfirmed"
    assert assessment.tier is RiskTier.BLUE  # no tier change by itself
    assert assessment.referral is None


def test_confirmed_crisis_has_no_recheck_anchor(pathway: Pathway) -> None:
    readings = (bp(186, 102, hours_before(1), HOME), bp(186, 102, hours_before(2), HOME))

    assert (
        "unconfirmed_crisis_reading" not in pathway.snapshot(history(patient(HTN), readings=readings)).anchors
    )


@pytest.mark.parametrize(
    ("visit_age", "recent"),
    [
        pytest.param(timedelta(hours=24), True, id="office-crisis-24-h-ago-is-recent"),
        pytest.param(timedelta(hours=24) + MINUTE, False, id="office-crisis-24-h-1-min-ago-is-not-recent"),
        pytest.param(timedelta(days=30), False, id="office-crisis-30-days-ago-still-confirmed"),
    ],
)
def test_office_crisis_stays_confirmed_while_latest_but_is_recent_only_for_24_hours(
    pathway: Pathway, visit_age: timedelta, recent: bool
) -> None:
    facts = pathway.snapshot(_hypertensive(visit(AS_OF - visit_age, bp(186, 104)))).facts

    assert facts["bp_crisis_confirmed"] is True
    assert facts["bp_crisis_recent"] is recent


# --- HbA1c and labs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "counts"),
    [
        pytest.param(timedelta(days=180), True, id="180-days"),
        pytest.param(timedelta(days=180) + MINUTE, False, id="180-days-1-min"),
        pytest.param(timedelta(days=181), False, id="181-days"),
    ],
)
def test_hba1c_counts_up_to_180_days_old(pathway: Pathway, age: timedelta, counts: bool) -> None:
    facts = pathway.snapshot(history(patient(DM), readings=(lab(ReadingKind.HBA1C, 7.4, AS_OF - age),))).facts

    assert ("hba1c" in facts) is counts
    if counts:
        assert facts["hba1c"] == 7.4
    assert facts["hba1c_age_days"] == age.total_seconds() / 86400


def test_latest_lab_value_wins(pathway: Pathway) -> None:
    readings = (lab(ReadingKind.HBA1C, 8.1, days_before(100)), lab(ReadingKind.HBA1C, 6.5, days_before(10)))

    facts = pathway.snapshot(history(patient(DM), readings=readings)).facts

    assert (facts["hba1c"], facts["hba1c_age_days"]) == (6.5, 10.0)


# --- Encounter classification ----------------------------------------------------------------

UP = bp(150, 95)  # uncontrolled for a 60-year-old hypertensive (target 140/90)
OK = bp(128, 78)
HIGH_FPG = glucose(7.0)
GOOD_FPG = glucose(6.9)


@pytest.mark.parametrize(
    ("visits", "count"),
    [
        pytest.param((UP,), 1, id="1-uncontrolled"),
        pytest.param((UP, UP), 2, id="2-uncontrolled"),
        pytest.param((UP, UP, UP), 3, id="3-uncontrolled"),
        pytest.param((UP, OK), 0, id="uncontrolled-then-controlled"),
        pytest.param((OK, UP, UP), 2, id="controlled-then-2-uncontrolled"),
        pytest.param((UP, OK, UP), 1, id="controlled-breaks-the-run"),
        pytest.param((UP, GOOD_FPG, UP), 2, id="unknown-encounter-is-skipped"),
        pytest.param((UP, UP, GOOD_FPG), 2, id="unknown-newest-encounter-is-skipped"),
        pytest.param((GOOD_FPG,), 0, id="only-unknown"),
        pytest.param((bp(140, 80),), 1, id="sbp-at-target-is-uncontrolled"),
        pytest.param((bp(139, 90),), 1, id="dbp-at-target-is-uncontrolled"),
        pytest.param((bp(139, 89),), 0, id="139-89-is-controlled"),
    ],
)
def test_consecutive_uncontrolled_hypertension_counts_the_newest_run(
    pathway: Pathway, visits: tuple[Measurement, ...], count: int
) -> None:
    encounters = tuple(visit(days_before(10 + 20 * (len(visits) - 1 - i)), r) for i, r in enumerate(visits))

    facts = pathway.snapshot(_hypertensive(*encounters)).facts

    assert facts["consecutive_uncontrolled_hypertension"] == count


@pytest.mark.parametrize(
    ("visits", "count"),
    [
        pytest.param((HIGH_FPG,), 1, id="1-uncontrolled"),
        pytest.param((HIGH_FPG, HIGH_FPG), 2, id="2-uncontrolled"),
        pytest.param((HIGH_FPG, HIGH_FPG, HIGH_FPG), 3, id="3-uncontrolled"),
        pytest.param((HIGH_FPG, GOOD_FPG), 0, id="fpg-6.9-is-controlled"),
        pytest.param((HIGH_FPG, OK, HIGH_FPG), 2, id="bp-only-encounter-is-skipped"),
        pytest.param((glucose(10.0, kind=ReadingKind.RPG),), 1, id="rpg-10.0-is-uncontrolled"),
        pytest.param((glucose(9.9, kind=ReadingKind.RPG),), 0, id="rpg-9.9-is-controlled"),
    ],
)
def test_consecutive_uncontrolled_diabetes_counts_the_newest_run(
    pathway: Pathway, visits: tuple[Measurement, ...], count: int
) -> None:
    encounters = tuple(visit(days_before(10 + 20 * (len(visits) - 1 - i)), r) for i, r in enumerate(visits))

    facts = pathway.snapshot(history(patient(DM), encounters=encounters)).facts

    assert facts["consecutive_uncontrolled_diabetes"] == count


def test_encounters_are_classified_per_disease_the_patient_has(pathway: Pathway) -> None:
    case = history(
        patient(HTN, DM),
        encounters=(
            visit(days_before(30), UP, GOOD_FPG),
            visit(days_before(20), OK),
            visit(days_before(10), HIGH_FPG),
        ),
    )

    encounters = pathway.snapshot(case).encounters

    assert [(e.at, e.hypertension, e.diabetes) for e in encounters] == [
        (days_before(30), UNCONTROLLED, CONTROLLED),
        (days_before(20), CONTROLLED, UNKNOWN),
        (days_before(10), UNKNOWN, UNCONTROLLED),
    ]


def test_a_patient_without_the_disease_gets_no_classification_for_it(pathway: Pathway) -> None:
    snapshot = pathway.snapshot(_hypertensive(visit(days_before(10), UP, HIGH_FPG)))

    assert [(e.hypertension, e.diabetes) for e in snapshot.encounters] == [(UNCONTROLLED, None)]
    assert "consecutive_uncontrolled_diabetes" not in snapshot.facts


@pytest.mark.parametrize(
    ("oldest_age", "classified", "count"),
    [
        pytest.param(timedelta(days=180), 2, 2, id="exactly-180-days-is-classified"),
        pytest.param(timedelta(days=180) + MINUTE, 1, 1, id="180-days-1-min-is-not"),
    ],
)
def test_encounters_older_than_180_days_are_not_classified(
    pathway: Pathway, oldest_age: timedelta, classified: int, count: int
) -> None:
    snapshot = pathway.snapshot(_hypertensive(visit(AS_OF - oldest_age, UP), visit(days_before(10), UP)))

    assert len(snapshot.encounters) == classified
    assert snapshot.facts["consecutive_uncontrolled_hypertension"] == count


# --- Latest encounter glucose ------------------------------------------------------------------

RPG = ReadingKind.RPG
PPG2H = ReadingKind.PPG2H

ENCOUNTER_GLUCOSE_CASES = [
    pytest.param((visit(days_before(5), glucose(6.0), glucose(7.0)),), (6.5, True, 7.0), id="fpg-mean"),
    pytest.param(
        (visit(days_before(5), glucose(6.0), glucose(12.0, kind=RPG)),), (6.0, True, 7.0), id="fpg-beats-rpg"
    ),
    pytest.param(
        (visit(days_before(5), glucose(9.0, kind=RPG), glucose(12.0, kind=PPG2H)),),
        (10.5, False, 10.0),
        id="rpg-ppg2h-mean-against-10.0",
    ),
    pytest.param(
        (visit(days_before(20), glucose(6.4)), visit(days_before(5), bp(130, 80))),
        (6.4, True, 7.0),
        id="newest-encounter-without-glucose-is-skipped",
    ),
    pytest.param(
        (visit(days_before(20), glucose(6.4)), visit(days_before(5), glucose(8.8))),
        (8.8, True, 7.0),
        id="newest-encounter-wins",
    ),
    pytest.param((visit(days_before(90), glucose(6.4)),), (6.4, True, 7.0), id="exactly-90-days"),
    pytest.param((visit(days_before(90) - MINUTE, glucose(6.4)),), None, id="90-days-1-min"),
]


@pytest.mark.parametrize(("encounters", "expected"), ENCOUNTER_GLUCOSE_CASES)
def test_latest_encounter_glucose_uses_fpg_mean_else_non_fasting_mean(
    pathway: Pathway, encounters: tuple[Encounter, ...], expected: tuple[float, bool, float] | None
) -> None:
    facts = pathway.snapshot(history(patient(DM), encounters=encounters)).facts

    if expected is None:
        assert "latest_encounter_glucose" not in facts
        assert "latest_encounter_glucose_target" not in facts
    else:
        assert (
            facts["latest_encounter_glucose"],
            facts["latest_encounter_glucose_fasting"],
            facts["latest_encounter_glucose_target"],
        ) == expected


def test_loose_home_glucose_is_not_encounter_glucose(pathway: Pathway) -> None:
    case = history(patient(DM), readings=(glucose(9.0, at=days_before(1), source=HOME),))

    assert "latest_encounter_glucose" not in pathway.snapshot(case).facts


# --- Age ---------------------------------------------------------------------------------------


def _on(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 9, 0, tzinfo=CLINIC_TZ)


@pytest.mark.parametrize(
    ("birth", "as_of", "age"),
    [
        pytest.param(date(2000, 2, 29), date(2025, 2, 28), 24, id="leap-birthday-not-yet-on-28-feb"),
        pytest.param(date(2000, 2, 29), date(2025, 3, 1), 25, id="leap-birthday-counts-on-1-mar"),
        pytest.param(date(2000, 2, 29), date(2024, 2, 29), 24, id="leap-birthday-in-a-leap-year"),
        pytest.param(date(2000, 2, 29), date(2024, 2, 28), 23, id="day-before-leap-birthday"),
        pytest.param(date(1961, 3, 1), date(2026, 3, 1), 65, id="65-on-the-birthday"),
        pytest.param(date(1961, 3, 2), date(2026, 3, 1), 64, id="64-the-day-before"),
    ],
)
def test_age_is_completed_years_on_the_as_of_date(
    pathway: Pathway, birth: date, as_of: date, age: int
) -> None:
    profile = PatientProfile(sex=Sex.FEMALE, birth_date=birth)

    assert pathway.snapshot(history(profile), as_of=_on(as_of)).facts["age"] == age


def test_age_uses_the_clinic_calendar_date_of_as_of(pathway: Pathway) -> None:
    profile = PatientProfile(sex=Sex.MALE, birth_date=date(1961, 3, 1))
    as_of = datetime(2026, 2, 28, 16, 30, tzinfo=UTC)  # 2026-03-01 00:30 in Shanghai

    assert pathway.snapshot(history(profile), as_of=as_of).facts["age"] == 65


# --- Replay ------------------------------------------------------------------------------------


def test_readings_after_as_of_are_ignored(pathway: Pathway) -> None:
    later = AS_OF + MINUTE
    case = history(
        patient(HTN, DM),
        encounters=(visit(days_before(10), bp(128, 78)), visit(later, bp(186, 112), glucose(12.0))),
        readings=(
            bp(190, 115, at=later, source=HOME),
            lab(ReadingKind.LDL_C, 5.0, later),
            glucose(2.5, at=later, source=CGM),
            bp(190, 116, at=later, source=CLINIC),
        ),
        symptoms=((Symptom.SEVERE_HEADACHE, later),),
    )

    snapshot = pathway.snapshot(case)
    now = snapshot.facts
    replayed = pathway.snapshot(case, as_of=later)
    replayed_later = replayed.facts

    assert (now["office_sbp"], now["bp_crisis_confirmed"], now["bp_crisis_unconfirmed"]) == (
        128.0,
        False,
        False,
    )
    assert "ldl_c" not in now
    assert "self_monitored_glucose_min" not in now
    assert "latest_encounter_glucose" not in now
    assert now["bp_danger_symptom"] is False
    assert now["days_since_last_bp"] == 10.0
    assert len(snapshot.encounters) == 1
    # The visit and the loose clinic reading at the same instant are two encounters; the implicit
    # one comes last, so it is the office BP (PATHWAY.md §2: never merged into a visit).
    assert len(replayed.encounters) == 3
    assert replayed_later["bp_crisis_confirmed"] is True
    assert replayed_later["office_sbp"] == 190.0
    assert replayed_later["ldl_c"] == 5.0
    assert replayed_later["self_monitored_glucose_min"] == 2.5
    assert replayed_later["bp_danger_symptom"] is True


def test_snapshot_replays_a_past_moment(pathway: Pathway) -> None:
    case = _hypertensive(visit(days_before(40), bp(150, 95)), visit(days_before(10), bp(128, 78)))

    facts = pathway.snapshot(case, as_of=days_before(20)).facts

    assert facts["office_sbp"] == 150.0
    assert facts["office_bp_age_days"] == 20.0


# --- Encounters and loose clinic readings ------------------------------------------------------

EXPLICIT_AT = datetime(2026, 2, 20, 9, 0, tzinfo=CLINIC_TZ)


@pytest.mark.parametrize(
    ("loose_at", "office"),
    [
        pytest.param(
            datetime(2026, 2, 20, 15, 30, tzinfo=UTC), (130.0, 70.0), id="23-30-same-day-after-visit"
        ),
        pytest.param(datetime(2026, 2, 20, 16, 30, tzinfo=UTC), (130.0, 70.0), id="00-30-next-day-shanghai"),
        pytest.param(datetime(2026, 2, 20, 0, 30, tzinfo=CLINIC_TZ), (150.0, 96.0), id="earlier-same-day"),
    ],
)
def test_a_loose_clinic_reading_is_its_own_implicit_encounter_never_part_of_a_visit(
    pathway: Pathway, loose_at: datetime, office: tuple[float, float]
) -> None:
    case = history(
        patient(HTN),
        encounters=(visit(EXPLICIT_AT, bp(150, 96)),),
        readings=(bp(130, 70, at=loose_at, source=CLINIC),),
    )

    snapshot = pathway.snapshot(case)

    assert len(snapshot.encounters) == 2
    assert (snapshot.facts["office_sbp"], snapshot.facts["office_dbp"]) == office


def test_a_crisis_reading_in_the_evening_is_not_averaged_into_the_morning_visit(pathway: Pathway) -> None:
    morning = datetime(2026, 3, 1, 8, 0, tzinfo=CLINIC_TZ)
    evening = datetime(2026, 3, 1, 20, 0, tzinfo=CLINIC_TZ)
    case = history(
        patient(HTN),
        encounters=(visit(morning, bp(130, 80)),),
        readings=(bp(186, 104, at=evening, source=CLINIC),),
    )

    facts = pathway.snapshot(case, as_of=evening + MINUTE).facts

    assert (facts["office_sbp"], facts["office_dbp"], facts["bp_crisis_confirmed"]) == (186.0, 104.0, True)


def test_several_lab_values_at_one_instant_the_highest_counts(pathway: Pathway) -> None:
    at = days_before(2)
    for order in ((3.1, 4.2, 2.0), (4.2, 2.0, 3.1), (2.0, 3.1, 4.2)):
        case = history(patient(HTN), readings=tuple(lab(ReadingKind.LDL_C, v, at) for v in order))
        assert pathway.snapshot(case).facts["ldl_c"] == 4.2


def test_loose_clinic_reading_without_a_visit_forms_an_implicit_encounter(pathway: Pathway) -> None:
    first, second = days_before(3), days_before(3) + timedelta(hours=2)
    case = history(
        patient(HTN),
        readings=(bp(150, 95, at=first, source=CLINIC), bp(146, 91, at=second, source=CLINIC)),
    )

    snapshot = pathway.snapshot(case)

    assert [(e.at, e.hypertension) for e in snapshot.encounters] == [(second, UNCONTROLLED)]
    assert snapshot.anchors["latest_encounter"] == second
    assert (snapshot.facts["office_sbp"], snapshot.facts["office_dbp"]) == (148.0, 93.0)


def test_loose_home_reading_is_not_an_encounter(pathway: Pathway) -> None:
    snapshot = pathway.snapshot(
        history(patient(HTN), readings=(bp(150, 95, at=days_before(3), source=HOME),))
    )

    assert snapshot.encounters == ()
    assert "latest_encounter" not in snapshot.anchors
    assert "office_sbp" not in snapshot.facts


# --- Symptoms ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("symptom", "age", "danger", "sign"),
    [
        pytest.param(Symptom.SEVERE_HEADACHE, timedelta(hours=24), True, False, id="headache-exactly-24-h"),
        pytest.param(
            Symptom.SEVERE_HEADACHE, timedelta(hours=24) + MINUTE, False, False, id="headache-24-h-1-min"
        ),
        pytest.param(Symptom.ACETONE_BREATH, timedelta(hours=24), False, True, id="acetone-exactly-24-h"),
        pytest.param(
            Symptom.ACETONE_BREATH, timedelta(hours=24) + MINUTE, False, False, id="acetone-24-h-1-min"
        ),
        pytest.param(Symptom.NAUSEA_VOMITING, timedelta(hours=1), True, True, id="nausea-is-both"),
        pytest.param(Symptom.LEG_EDEMA, timedelta(0), True, False, id="leg-edema-at-as-of"),
    ],
)
def test_symptoms_count_for_24_hours(
    pathway: Pathway, symptom: Symptom, age: timedelta, danger: bool, sign: bool
) -> None:
    facts = pathway.snapshot(history(patient(HTN), symptoms=((symptom, AS_OF - age),))).facts

    assert (facts["bp_danger_symptom"], facts["hyperglycaemic_sign"]) == (danger, sign)


@pytest.mark.parametrize(
    ("age", "danger"),
    [
        pytest.param(timedelta(hours=24), True, id="visit-exactly-24-h-ago"),
        pytest.param(timedelta(hours=24) + MINUTE, False, id="visit-24-h-1-min-ago"),
    ],
)
def test_symptoms_reported_at_a_visit_are_dated_at_the_visit(
    pathway: Pathway, age: timedelta, danger: bool
) -> None:
    case = _hypertensive(visit(AS_OF - age, bp(130, 80), symptoms=(Symptom.CHEST_PAIN,)))

    assert pathway.snapshot(case).facts["bp_danger_symptom"] is danger


# --- Lipid stratum -----------------------------------------------------------------------------

LDL = ReadingKind.LDL_C
TC = ReadingKind.TC
HDL = ReadingKind.HDL_C
OLD_CHD = ((Complication.CHD, date(2025, 1, 10)),)
OLD_STROKE = ((Complication.STROKE, date(2025, 1, 10)),)


def _lipids(*values: tuple[ReadingKind, float]) -> tuple[Measurement, ...]:
    return tuple(lab(kind, value, days_before(30)) for kind, value in values)


LIPID_STRATUM_CASES = [
    pytest.param(
        patient(HTN, DM, complications=OLD_CHD),
        _lipids((LDL, 1.2)),
        "ultra_high",
        1.4,
        id="ascvd-htn-dm-ultra-high",
    ),
    pytest.param(
        patient(HTN, complications=OLD_STROKE, smoker=True),
        _lipids((LDL, 2.0)),
        "ultra_high",
        1.4,
        id="ascvd-htn-smoker-ultra-high",
    ),
    pytest.param(patient(complications=OLD_STROKE), _lipids((LDL, 2.0)), "very_high", 1.8, id="ascvd-alone"),
    pytest.param(
        patient(HTN, complications=OLD_CHD), _lipids((LDL, 2.0)), "very_high", 1.8, id="ascvd-one-condition"
    ),
    pytest.param(
        patient(complications=((Complication.PVD, date(2025, 1, 10)),)),
        (),
        "very_high",
        1.8,
        id="pvd-is-ascvd-even-without-lipids",
    ),
    pytest.param(patient(DM, age=40), _lipids((LDL, 1.5)), "high", 2.6, id="diabetes-age-40"),
    pytest.param(patient(DM, age=39), _lipids((LDL, 2.0)), "low", 3.4, id="diabetes-age-39-uses-chart"),
    pytest.param(patient(Condition.CKD, age=30), _lipids((LDL, 2.0)), "high", 2.6, id="ckd"),
    pytest.param(patient(age=30), _lipids((LDL, 4.9)), "high", 2.6, id="ldl-4.9"),
    pytest.param(patient(age=30), _lipids((TC, 7.2)), "high", 2.6, id="tc-7.2"),
    pytest.param(patient(age=30), _lipids((LDL, 4.8)), "low", 3.4, id="ldl-4.8-no-htn-0-factors"),
    pytest.param(
        patient(HTN, age=50, smoker=True), _lipids((LDL, 2.0)), "moderate", 2.6, id="htn-2-factors-ldl-2.0"
    ),
    pytest.param(
        patient(HTN, age=50, smoker=True), _lipids((LDL, 2.6)), "high", 2.6, id="htn-2-factors-ldl-2.6"
    ),
    pytest.param(
        patient(HTN, age=50, smoker=True), _lipids((LDL, 1.8)), "moderate", 2.6, id="htn-2-factors-ldl-1.8"
    ),
    pytest.param(
        patient(HTN, age=50, smoker=True), _lipids((LDL, 1.7)), "low", 3.4, id="ldl-below-1.8-is-below-chart"
    ),
    pytest.param(
        patient(HTN, age=50, smoker=True),
        _lipids((LDL, 2.0), (HDL, 0.9)),
        "high",
        2.6,
        id="htn-3-factors-ldl-2.0",
    ),
    pytest.param(patient(HTN, age=40), _lipids((LDL, 4.0)), "low", 3.4, id="htn-0-factors"),
    pytest.param(patient(HTN, age=45), _lipids((LDL, 2.6)), "moderate", 2.6, id="htn-male-45-is-1-factor"),
    pytest.param(patient(HTN, age=44), _lipids((LDL, 2.6)), "low", 3.4, id="htn-male-44-is-0-factors"),
    pytest.param(
        patient(HTN, age=55, sex=Sex.FEMALE),
        _lipids((LDL, 2.6)),
        "moderate",
        2.6,
        id="htn-female-55-is-1-factor",
    ),
    pytest.param(
        patient(HTN, age=54, sex=Sex.FEMALE), _lipids((LDL, 2.6)), "low", 3.4, id="htn-female-54-is-0-factors"
    ),
    pytest.param(patient(age=40, smoker=True), _lipids((LDL, 4.0)), "low", 3.4, id="no-htn-1-factor-ldl-4.0"),
    pytest.param(
        patient(age=50, smoker=True), _lipids((LDL, 3.4)), "moderate", 2.6, id="no-htn-2-factors-ldl-3.4"
    ),
    pytest.param(
        patient(age=50, smoker=True), _lipids((LDL, 3.3)), "low", 3.4, id="no-htn-2-factors-ldl-3.3"
    ),
    pytest.param(
        patient(HTN, age=50, smoker=True), _lipids((TC, 3.1)), "moderate", 2.6, id="tc-3.1-without-ldl"
    ),
    pytest.param(patient(HTN, age=50, smoker=True), _lipids((TC, 3.0)), "low", 3.4, id="tc-3.0-without-ldl"),
    pytest.param(patient(HTN, age=50, smoker=True), _lipids((TC, 4.1)), "high", 2.6, id="tc-4.1-without-ldl"),
    pytest.param(
        patient(HTN, age=50, smoker=True), _lipids((LDL, 1.7), (TC, 5.0)), "low", 3.4, id="ldl-wins-over-tc"
    ),
]


@pytest.mark.parametrize(("profile", "readings", "stratum", "target"), LIPID_STRATUM_CASES)
def test_lipid_stratum_and_ldl_target(
    pathway: Pathway, profile: PatientProfile, readings: tuple[Measurement, ...], stratum: str, target: float
) -> None:
    facts = pathway.snapshot(history(profile, readings=readings)).facts

    assert (facts["lipid_stratum"], facts["ldl_target"]) == (stratum, target)


@pytest.mark.parametrize(
    ("readings", "factors"),
    [
        pytest.param((), 2, id="missing-hdl-is-not-a-factor"),
        pytest.param(_lipids((HDL, 1.0)), 2, id="hdl-1.0-is-not-a-factor"),
        pytest.param(_lipids((HDL, 0.9)), 3, id="hdl-0.9-is-a-factor"),
        pytest.param((lab(HDL, 0.9, days_before(366)),), 2, id="hdl-older-than-365-days-is-not"),
    ],
)
def test_lipid_risk_factors_count_smoking_age_and_low_hdl(
    pathway: Pathway, readings: tuple[Measurement, ...], factors: int
) -> None:
    case = history(patient(HTN, age=50, smoker=True), readings=readings)

    assert pathway.snapshot(case).facts["lipid_risk_factor_count"] == factors


@pytest.mark.parametrize(
    ("age", "counts"),
    [
        pytest.param(timedelta(days=365), True, id="exactly-365-days"),
        pytest.param(timedelta(days=365) + MINUTE, False, id="365-days-1-min"),
        pytest.param(timedelta(days=400), False, id="400-days"),
    ],
)
def test_lipids_older_than_365_days_do_not_count(pathway: Pathway, age: timedelta, counts: bool) -> None:
    readings = tuple(
        lab(kind, value, AS_OF - age) for kind, value in ((LDL, 5.0), (TC, 7.5), (ReadingKind.TG, 6.0))
    )

    facts = pathway.snapshot(history(patient(Condition.DYSLIPIDEMIA, age=30), readings=readings)).facts

    for name in ("ldl_c", "tc", "tg"):
        assert (name in facts) is counts
    assert ("lipid_stratum" in facts) is counts
    assert facts["ldl_c_age_days"] == age.total_seconds() / 86400
    assert (
        "ldl_c_measured" in pathway.snapshot(history(patient(age=30), readings=readings)).anchors
    ) is counts


# --- Catalogue ---------------------------------------------------------------------------------


def test_every_fact_is_in_the_catalogue_with_its_type(pathway: Pathway) -> None:
    case = history(
        patient(HTN, DM, Condition.DYSLIPIDEMIA, complications=OLD_CHD, smoker=True),
        encounters=(visit(days_before(10), bp(150, 95), glucose(7.2)),),
        readings=(
            *_home_bps(6, 3),
            glucose(3.5, at=days_before(1), source=CGM),
            *_lipids((LDL, 3.0), (TC, 5.0), (HDL, 0.9), (ReadingKind.TG, 2.5), (ReadingKind.HBA1C, 7.5)),
            lab(ReadingKind.EGFR, 55, days_before(30)),
            lab(ReadingKind.UACR, 40, days_before(30)),
        ),
        symptoms=((Symptom.SEVERE_HEADACHE, hours_before(2)),),
    )

    facts = pathway.snapshot(case).facts

    assert set(facts) <= set(FACT_TYPES)
    assert {name: type(value) for name, value in facts.items()} == {name: FACT_TYPES[name] for name in facts}
