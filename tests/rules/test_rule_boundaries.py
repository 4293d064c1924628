"""Every rule of the default pack at its exact boundary, and how fired rules combine (PATHWAY.md §4–5).

Each table row is one patient situation and the rules of one family that must fire for it (the
other rules of the family must not). Times are relative to AS_OF (2026-03-01 09:00 Asia/Shanghai).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, time, timedelta

import pytest

from pathway.clinical.assessment import Assessment, DueTask
from pathway.clinical.clock import CLINIC_TZ
from pathway.clinical.history import Encounter, Measurement, PatientHistory, PatientProfile
from pathway.clinical.tiers import ManagementLevel, ReferralUrgency, RiskTier, TaskKind
from pathway.clinical.vocabulary import Complication, Condition, ReadingKind, ReadingSource, Sex, Symptom
from rules.registry import LoadedPack
from tests.builders import (
    AS_OF,
    bp,
    controlled_hypertensive,
    days_before,
    glucose,
    history,
    hours_before,
    lab,
    patient,
    visit,
)
from tests.conftest import Pathway

HOME = ReadingSource.HOME
WEARABLE = ReadingSource.WEARABLE
CGM = ReadingSource.CGM
CLINIC = ReadingSource.CLINIC
LAB = ReadingSource.LAB
HTN = Condition.HYPERTENSION
DM = Condition.DIABETES
DYS = Condition.DYSLIPIDEMIA
CKD = Condition.CKD
RPG = ReadingKind.RPG
PPG2H = ReadingKind.PPG2H
LDL = ReadingKind.LDL_C
TC = ReadingKind.TC
TG = ReadingKind.TG
HDL = ReadingKind.HDL_C
HBA1C = ReadingKind.HBA1C
MINUTE = timedelta(minutes=1)
TODAY = AS_OF.date()
OLD_ONSET = date(2025, 1, 10)


def _home_bps(systolic: float, diastolic: float) -> tuple[Measurement, ...]:
    """Six home readings on three days in the last week: enough for a home BP mean."""
    return tuple(
        bp(systolic, diastolic, at=hours_before(1 + i // 3 + 24 * (i % 3)), source=HOME) for i in range(6)
    )


def _at_clinic(*conditions: Condition, readings: tuple[Measurement, ...], age: int = 60) -> PatientHistory:
    """A patient seen one hour ago with ``readings`` taken at the visit."""
    return history(patient(*conditions, age=age), encounters=(visit(hours_before(1), *readings),))


def _with(*conditions: Condition, readings: tuple[Measurement, ...] = (), age: int = 60) -> PatientHistory:
    return history(patient(*conditions, age=age), readings=readings)


def _fired_of(pathway: Pathway, case: PatientHistory, family: frozenset[str]) -> set[str]:
    return pathway.fired(case) & family


def _tasks(assessment: Assessment, kind: TaskKind) -> list[DueTask]:
    return [t for t in assessment.tasks if t.kind is kind]


COVERED: set[str] = set()


def _family(*rule_ids: str) -> frozenset[str]:
    COVERED.update(rule_ids)
    return frozenset(rule_ids)


# --- BP crisis ---------------------------------------------------------------------------------

BP_CRISIS = _family("bp.crisis.symptomatic", "bp.crisis", "bp.crisis.unconfirmed")
HOME_CRISIS_PAIR = (
    bp(186, 102, hours_before(1), HOME),
    bp(184, 100, hours_before(1) + timedelta(minutes=5), HOME),
)

BP_CRISIS_CASES = [
    pytest.param(_at_clinic(HTN, readings=(bp(179, 109),)), set(), id="office-179-109-is-not-a-crisis"),
    pytest.param(_at_clinic(HTN, readings=(bp(180, 100),)), {"bp.crisis"}, id="office-180-100-is-a-crisis"),
    pytest.param(_at_clinic(HTN, readings=(bp(170, 110),)), {"bp.crisis"}, id="office-170-110-is-a-crisis"),
    pytest.param(
        _at_clinic(HTN, readings=(bp(179, 100), bp(180, 100))), set(), id="office-mean-179.5-is-not-a-crisis"
    ),
    pytest.param(
        history(patient(HTN), encounters=(visit(days_before(30), bp(186, 104)),)),
        {"bp.crisis"},
        id="office-crisis-counts-while-it-is-the-latest-office-bp",
    ),
    pytest.param(
        history(
            patient(HTN),
            encounters=(visit(days_before(30), bp(186, 104)), visit(days_before(10), bp(128, 78))),
        ),
        set(),
        id="office-crisis-replaced-by-a-newer-office-bp",
    ),
    pytest.param(
        history(patient(HTN), encounters=(visit(days_before(90) - MINUTE, bp(186, 104)),)),
        set(),
        id="office-crisis-older-than-90-days",
    ),
    pytest.param(_with(HTN, readings=HOME_CRISIS_PAIR), {"bp.crisis"}, id="two-home-readings-5-min-apart"),
    pytest.param(
        _with(
            HTN,
            readings=(
                bp(186, 102, hours_before(1), HOME),
                bp(184, 100, hours_before(1) + timedelta(minutes=4, seconds=59), WEARABLE),
            ),
        ),
        {"bp.crisis.unconfirmed"},
        id="two-home-readings-4-min-59-s-apart-is-unconfirmed",
    ),
    pytest.param(
        _with(HTN, readings=(bp(179, 110, hours_before(2), HOME),)),
        {"bp.crisis.unconfirmed"},
        id="single-home-dbp-110-is-unconfirmed",
    ),
    pytest.param(
        _with(HTN, readings=(bp(179, 109, hours_before(2), HOME),)),
        set(),
        id="single-home-179-109-is-nothing",
    ),
    pytest.param(
        _with(HTN, readings=(bp(186, 102, hours_before(24) - MINUTE, HOME),)),
        set(),
        id="home-crisis-older-than-24-h",
    ),
    # bp.crisis.symptomatic: a crisis in the last 24 h, confirmed or not, with a BP 危急 symptom.
    pytest.param(
        history(
            patient(HTN),
            encounters=(visit(hours_before(1), bp(180, 100), symptoms=(Symptom.SEVERE_HEADACHE,)),),
        ),
        {"bp.crisis", "bp.crisis.symptomatic"},
        id="office-crisis-with-headache",
    ),
    pytest.param(
        history(
            patient(HTN),
            encounters=(visit(hours_before(1), bp(179, 109), symptoms=(Symptom.SEVERE_HEADACHE,)),),
        ),
        set(),
        id="office-179-109-with-headache",
    ),
    pytest.param(
        history(
            patient(HTN),
            readings=(bp(186, 102, hours_before(2), HOME),),
            symptoms=((Symptom.CHEST_PAIN, hours_before(1)),),
        ),
        {"bp.crisis.unconfirmed", "bp.crisis.symptomatic"},
        id="unconfirmed-home-crisis-with-chest-pain",
    ),
    pytest.param(
        history(
            patient(HTN),
            encounters=(visit(hours_before(1), bp(186, 104)),),
            symptoms=((Symptom.ACETONE_BREATH, hours_before(1)),),
        ),
        {"bp.crisis"},
        id="office-crisis-with-a-non-danger-symptom",
    ),
    pytest.param(
        history(
            patient(HTN),
            encounters=(visit(hours_before(1), bp(186, 104)),),
            symptoms=((Symptom.SEVERE_HEADACHE, hours_before(24) - MINUTE),),
        ),
        {"bp.crisis"},
        id="office-crisis-with-headache-older-than-24-h",
    ),
    pytest.param(
        history(
            patient(HTN),
            encounters=(visit(days_before(2), bp(186, 104)),),
            symptoms=((Symptom.SEVERE_HEADACHE, hours_before(1)),),
        ),
        {"bp.crisis"},
        id="office-crisis-2-days-ago-is-not-recent",
    ),
    pytest.param(
        history(
            patient(HTN),
            encounters=(visit(hours_before(24), bp(186, 104)),),
            symptoms=((Symptom.LIMB_WEAKNESS, hours_before(1)),),
        ),
        {"bp.crisis", "bp.crisis.symptomatic"},
        id="office-crisis-exactly-24-h-ago-is-recent",
    ),
]

CRISIS_REFERRAL = {
    frozenset(): None,
    frozenset({"bp.crisis"}): ReferralUrgency.URGENT,
    frozenset({"bp.crisis.unconfirmed"}): None,
}


@pytest.mark.parametrize(("case", "expected"), BP_CRISIS_CASES)
def test_bp_crisis_rules_fire_at_180_110(pathway: Pathway, case: PatientHistory, expected: set[str]) -> None:
    assessment = pathway.assess(case)

    assert {r.rule_id for r in assessment.reasons} & BP_CRISIS == expected
    urgency = assessment.referral.urgency if assessment.referral else None
    if "bp.crisis.symptomatic" in expected:
        assert urgency is ReferralUrgency.EMERGENCY
    else:
        assert urgency is CRISIS_REFERRAL[frozenset(expected)]


# --- Acute glucose -----------------------------------------------------------------------------

GLU_HIGH = _family("glu.crisis.symptomatic", "glu.high")


def _home_rpg(value: float, age: timedelta = timedelta(hours=2), source: ReadingSource = HOME) -> Measurement:
    return glucose(value, at=AS_OF - age, source=source, kind=RPG)


GLU_HIGH_CASES = [
    pytest.param(_with(DM, readings=(_home_rpg(16.6),)), set(), None, id="16.6-is-nothing"),
    pytest.param(_with(DM, readings=(_home_rpg(16.7),)), {"glu.high"}, "urgent", id="16.7-is-glu-high"),
    pytest.param(
        _with(DM, readings=(_home_rpg(33.2),)), {"glu.high"}, "urgent", id="33.2-alone-is-glu-high-only"
    ),
    pytest.param(
        _with(DM, readings=(_home_rpg(33.3),)),
        {"glu.crisis.symptomatic", "glu.high"},
        "emergency",
        id="33.3-alone-is-a-crisis",
    ),
    pytest.param(
        history(
            patient(DM), readings=(_home_rpg(16.7),), symptoms=((Symptom.ACETONE_BREATH, hours_before(1)),)
        ),
        {"glu.crisis.symptomatic"},
        "emergency",
        id="16.7-with-acetone-breath-is-a-crisis",
    ),
    pytest.param(
        history(
            patient(DM), readings=(_home_rpg(16.7),), symptoms=((Symptom.NAUSEA_VOMITING, hours_before(1)),)
        ),
        {"glu.crisis.symptomatic"},
        "emergency",
        id="16.7-with-vomiting-is-a-crisis",
    ),
    pytest.param(
        history(
            patient(DM), readings=(_home_rpg(16.6),), symptoms=((Symptom.ACETONE_BREATH, hours_before(1)),)
        ),
        set(),
        None,
        id="16.6-with-acetone-breath-is-nothing",
    ),
    pytest.param(
        history(patient(DM), readings=(_home_rpg(16.7),), symptoms=((Symptom.CHEST_PAIN, hours_before(1)),)),
        {"glu.high"},
        "urgent",
        id="16.7-with-a-non-sign-symptom-is-glu-high",
    ),
    pytest.param(
        history(
            patient(DM),
            readings=(_home_rpg(16.7),),
            symptoms=((Symptom.ACETONE_BREATH, hours_before(24) - MINUTE),),
        ),
        {"glu.high"},
        "urgent",
        id="16.7-with-a-sign-older-than-24-h-is-glu-high",
    ),
    pytest.param(
        _with(DM, readings=(_home_rpg(16.7, timedelta(hours=24)),)),
        {"glu.high"},
        "urgent",
        id="16.7-exactly-24-h-ago",
    ),
    pytest.param(
        _with(DM, readings=(_home_rpg(16.7, timedelta(hours=24) + MINUTE),)),
        set(),
        None,
        id="16.7-24-h-1-min-ago",
    ),
    pytest.param(_at_clinic(DM, readings=(glucose(16.7),)), {"glu.high"}, "urgent", id="clinic-fpg-16.7"),
    pytest.param(
        _with(DM, readings=(_home_rpg(16.7, source=CGM),)), {"glu.high"}, "urgent", id="cgm-16.7-counts"
    ),
    pytest.param(
        _with(readings=(_home_rpg(16.7, source=LAB),)), {"glu.high"}, "urgent", id="lab-16.7-without-diabetes"
    ),
]


@pytest.mark.parametrize(("case", "expected", "referral"), GLU_HIGH_CASES)
def test_glucose_16_7_is_high_and_a_sign_or_33_3_makes_it_a_crisis(
    pathway: Pathway, case: PatientHistory, expected: set[str], referral: str | None
) -> None:
    assessment = pathway.assess(case)

    assert {r.rule_id for r in assessment.reasons} & GLU_HIGH == expected
    assert (assessment.referral.urgency.value if assessment.referral else None) == referral


GLU_HYPO_ENCOUNTER = _family("glu.hypo.encounter")

GLU_HYPO_ENCOUNTER_CASES = [
    pytest.param(_at_clinic(DM, readings=(glucose(3.9),)), True, id="clinic-fpg-3.9"),
    pytest.param(_at_clinic(DM, readings=(glucose(4.0),)), False, id="clinic-fpg-4.0"),
    pytest.param(_at_clinic(DM, readings=(glucose(3.9, kind=RPG),)), True, id="clinic-rpg-3.9"),
    pytest.param(_with(DM, readings=(glucose(3.9, hours_before(2), LAB),)), True, id="lab-fpg-3.9"),
    pytest.param(_with(DM, readings=(glucose(4.0, hours_before(2), LAB),)), False, id="lab-fpg-4.0"),
    pytest.param(
        _with(DM, readings=(glucose(3.9, hours_before(2), HOME),)), False, id="home-3.9-does-not-count"
    ),
    pytest.param(
        _with(DM, readings=(glucose(2.5, hours_before(2), HOME),)), False, id="home-2.5-does-not-count"
    ),
    pytest.param(
        _with(DM, readings=(glucose(3.9, hours_before(24), CLINIC),)), True, id="clinic-3.9-exactly-24-h"
    ),
    pytest.param(
        _with(DM, readings=(glucose(3.9, hours_before(24) - MINUTE, CLINIC),)),
        False,
        id="clinic-3.9-24-h-1-min",
    ),
]


@pytest.mark.parametrize(("case", "fires"), GLU_HYPO_ENCOUNTER_CASES)
def test_glucose_3_9_at_an_encounter_is_an_urgent_hypo(
    pathway: Pathway, case: PatientHistory, fires: bool
) -> None:
    assessment = pathway.assess(case)

    assert bool({r.rule_id for r in assessment.reasons} & GLU_HYPO_ENCOUNTER) is fires
    if fires:
        assert assessment.referral is not None
        assert assessment.referral.urgency is ReferralUrgency.URGENT
        assert assessment.tier is RiskTier.RED


GLU_HYPO_SELF = _family("glu.hypo.severe", "glu.hypo.mild")


def _self(value: float, source: ReadingSource = CGM, age: timedelta = timedelta(days=1)) -> Measurement:
    return glucose(value, at=AS_OF - age, source=source, kind=RPG)


GLU_HYPO_SELF_CASES = [
    pytest.param((_self(2.9),), {"glu.hypo.severe"}, id="cgm-2.9-is-severe"),
    pytest.param((_self(3.0),), {"glu.hypo.mild"}, id="cgm-3.0-is-mild"),
    pytest.param((_self(3.8),), {"glu.hypo.mild"}, id="cgm-3.8-is-mild"),
    pytest.param((_self(3.9),), set(), id="cgm-3.9-is-not-hypo"),
    pytest.param((_self(2.9, HOME),), {"glu.hypo.severe"}, id="home-2.9-is-severe"),
    pytest.param((_self(3.0, WEARABLE),), {"glu.hypo.mild"}, id="wearable-3.0-is-mild"),
    pytest.param(
        (_self(3.5), _self(2.9, age=timedelta(days=3))), {"glu.hypo.severe"}, id="lowest-decides-severe"
    ),
    pytest.param((_self(3.0, age=timedelta(days=7)),), {"glu.hypo.mild"}, id="3.0-exactly-7-days-ago"),
    pytest.param((_self(3.0, age=timedelta(days=7) + MINUTE),), set(), id="3.0-7-days-1-min-ago"),
    pytest.param((_self(2.9, CLINIC),), set(), id="clinic-2.9-is-not-self-monitored"),
    pytest.param((_self(2.9, LAB),), set(), id="lab-2.9-is-not-self-monitored"),
]


@pytest.mark.parametrize(("readings", "expected"), GLU_HYPO_SELF_CASES)
def test_self_monitored_hypo_is_severe_below_3_0_and_mild_below_3_9_never_both(
    pathway: Pathway, readings: tuple[Measurement, ...], expected: set[str]
) -> None:
    assessment = pathway.assess(_with(DM, readings=readings))

    assert {r.rule_id for r in assessment.reasons} & GLU_HYPO_SELF == expected
    if expected == {"glu.hypo.severe"}:
        assert assessment.referral is not None
        assert assessment.referral.urgency is ReferralUrgency.URGENT
    if expected == {"glu.hypo.mild"}:
        assert assessment.follow_up.interval_days == 7


# --- Follow-up history -------------------------------------------------------------------------

TWICE = _family("followup.uncontrolled.twice")
UP = bp(150, 95)  # uncontrolled at 60 (target 140/90)
OK = bp(128, 78)


def _visits(condition: Condition, *readings: Measurement, oldest_days: float | None = None) -> PatientHistory:
    """One visit per reading, oldest first, 20 days apart with the newest 10 days ago.

    ``oldest_days`` moves the oldest visit (to put it at the edge of the classification window).
    """
    ages: list[float] = [10 + 20 * (len(readings) - 1 - i) for i in range(len(readings))]
    if oldest_days is not None:
        ages[0] = oldest_days
    return history(
        patient(condition),
        encounters=tuple(visit(days_before(a), r) for a, r in zip(ages, readings, strict=True)),
    )


TWICE_CASES = [
    pytest.param(_visits(HTN, UP), False, id="htn-1-uncontrolled"),
    pytest.param(_visits(HTN, UP, UP), True, id="htn-2-uncontrolled"),
    pytest.param(_visits(HTN, OK, UP), False, id="htn-controlled-then-uncontrolled"),
    pytest.param(_visits(HTN, UP, OK, UP), False, id="htn-controlled-breaks-the-run"),
    pytest.param(_visits(HTN, UP, glucose(6.0), UP), True, id="htn-unknown-visit-is-skipped"),
    pytest.param(_visits(HTN, UP, UP, oldest_days=180), True, id="htn-oldest-exactly-180-days"),
    pytest.param(_visits(HTN, UP, UP, oldest_days=181), False, id="htn-oldest-181-days"),
    pytest.param(_visits(DM, glucose(7.0)), False, id="dm-1-uncontrolled"),
    pytest.param(_visits(DM, glucose(7.0), glucose(7.0)), True, id="dm-2-uncontrolled"),
    pytest.param(_visits(DM, glucose(6.9), glucose(7.0)), False, id="dm-controlled-then-uncontrolled"),
    pytest.param(
        _visits(DM, glucose(7.0), OK, glucose(10.0, kind=RPG)), True, id="dm-rpg-10.0-continues-the-run"
    ),
    pytest.param(_visits(DM, UP, UP), False, id="dm-patient-bp-does-not-count"),
]


@pytest.mark.parametrize(("case", "fires"), TWICE_CASES)
def test_two_consecutive_uncontrolled_visits_are_referred(
    pathway: Pathway, case: PatientHistory, fires: bool
) -> None:
    assessment = pathway.assess(case)

    assert bool({r.rule_id for r in assessment.reasons} & TWICE) is fires
    if fires:
        assert assessment.tier is RiskTier.RED
        assert assessment.referral is not None
        assert (assessment.referral.urgency, assessment.referral.rule_id) == (
            ReferralUrgency.ROUTINE,
            "followup.uncontrolled.twice",
        )


# --- Complications -----------------------------------------------------------------------------

COMPLICATION = _family("complication.new", "complication.stable")


@pytest.mark.parametrize(
    ("onsets", "expected"),
    [
        pytest.param((TODAY - timedelta(days=90),), {"complication.new"}, id="onset-90-days-is-new"),
        pytest.param((TODAY - timedelta(days=91),), {"complication.stable"}, id="onset-91-days-is-stable"),
        pytest.param((TODAY,), {"complication.new"}, id="onset-today-is-new"),
        pytest.param(
            (TODAY - timedelta(days=400), TODAY - timedelta(days=10)),
            {"complication.new", "complication.stable"},
            id="old-and-new",
        ),
        pytest.param((TODAY + timedelta(days=1),), set(), id="onset-tomorrow-is-not-yet"),
        pytest.param((), set(), id="none"),
    ],
)
def test_complication_is_new_for_90_days_then_stable(
    pathway: Pathway, onsets: tuple[date, ...], expected: set[str]
) -> None:
    codes = (Complication.RETINOPATHY, Complication.NEPHROPATHY)
    case = history(patient(DM, complications=tuple(zip(codes, onsets, strict=False))))

    assert _fired_of(pathway, case, COMPLICATION) == expected


# --- Lipids ------------------------------------------------------------------------------------

LIPID_SEVERE = _family("lipid.severe", "lipid.severe.tg_very_high")


def _lab(kind: ReadingKind, value: float, days: float = 30) -> Measurement:
    return lab(kind, value, days_before(days))


@pytest.mark.parametrize(
    ("reading", "expected", "referral"),
    [
        pytest.param(_lab(LDL, 4.8), set(), None, id="ldl-4.8"),
        pytest.param(_lab(LDL, 4.9), {"lipid.severe"}, "routine", id="ldl-4.9"),
        pytest.param(_lab(TG, 5.5), set(), None, id="tg-5.5"),
        pytest.param(_lab(TG, 5.6), {"lipid.severe"}, "routine", id="tg-5.6"),
        pytest.param(_lab(TG, 11.2), {"lipid.severe"}, "routine", id="tg-11.2"),
        pytest.param(_lab(TG, 11.3), {"lipid.severe", "lipid.severe.tg_very_high"}, "urgent", id="tg-11.3"),
        pytest.param(_lab(LDL, 4.9, days=365), {"lipid.severe"}, "routine", id="ldl-4.9-exactly-365-days"),
        pytest.param(_lab(LDL, 4.9, days=366), set(), None, id="ldl-4.9-366-days"),
        pytest.param(_lab(TC, 8.0), set(), None, id="tc-8.0-is-not-severe"),
    ],
)
def test_ldl_4_9_or_tg_5_6_is_referred_and_tg_11_3_urgently(
    pathway: Pathway, reading: Measurement, expected: set[str], referral: str | None
) -> None:
    assessment = pathway.assess(_with(DYS, readings=(reading,)))

    assert {r.rule_id for r in assessment.reasons} & LIPID_SEVERE == expected
    assert (assessment.referral.urgency.value if assessment.referral else None) == referral


ABOVE_TARGET = _family("lipid.above_target")
ULTRA = patient(HTN, DM, complications=((Complication.CHD, OLD_ONSET),))
VERY_HIGH = patient(complications=((Complication.STROKE, OLD_ONSET),))
HIGH = patient(DM, age=60)
MODERATE = patient(HTN, age=50, smoker=True)  # two risk factors: LDL 1.8–<2.6 is moderate
LOW = patient(age=30)


@pytest.mark.parametrize(
    ("profile", "ldl", "fires"),
    [
        pytest.param(ULTRA, 1.3, False, id="ultra-high-1.3"),
        pytest.param(ULTRA, 1.4, True, id="ultra-high-1.4"),
        pytest.param(VERY_HIGH, 1.7, False, id="very-high-1.7"),
        pytest.param(VERY_HIGH, 1.8, True, id="very-high-1.8"),
        pytest.param(HIGH, 2.5, False, id="high-2.5"),
        pytest.param(HIGH, 2.6, True, id="high-2.6"),
        pytest.param(MODERATE, 2.5, False, id="moderate-2.5"),
        pytest.param(MODERATE, 2.6, True, id="moderate-2.6"),
        pytest.param(LOW, 3.3, False, id="low-3.3"),
        pytest.param(LOW, 3.4, True, id="low-3.4"),
    ],
)
def test_ldl_at_the_stratum_target_is_above_target(
    pathway: Pathway, profile: PatientProfile, ldl: float, fires: bool
) -> None:
    case = history(profile, readings=(_lab(LDL, ldl),))

    assert bool(_fired_of(pathway, case, ABOVE_TARGET)) is fires


def test_ldl_older_than_365_days_is_not_above_target(pathway: Pathway) -> None:
    assert not _fired_of(pathway, history(LOW, readings=(_lab(LDL, 4.0, days=366),)), ABOVE_TARGET)


TG_OR_HDL = _family("lipid.tg_or_hdl")


@pytest.mark.parametrize(
    ("readings", "fires"),
    [
        pytest.param((_lab(TG, 2.2),), False, id="tg-2.2"),
        pytest.param((_lab(TG, 2.3),), True, id="tg-2.3"),
        pytest.param((_lab(TG, 5.5),), True, id="tg-5.5"),
        pytest.param((_lab(TG, 5.6),), False, id="tg-5.6-is-severe-instead"),
        pytest.param((_lab(HDL, 0.9),), True, id="hdl-0.9"),
        pytest.param((_lab(HDL, 1.0),), False, id="hdl-1.0"),
        pytest.param((_lab(TG, 2.3, days=366),), False, id="tg-2.3-366-days"),
        pytest.param((_lab(HDL, 0.9, days=366),), False, id="hdl-0.9-366-days"),
    ],
)
def test_tg_2_3_to_5_5_or_hdl_below_1_0_is_yellow(
    pathway: Pathway, readings: tuple[Measurement, ...], fires: bool
) -> None:
    assessment = pathway.assess(_with(DYS, readings=(*readings, _lab(LDL, 2.0))))

    assert bool({r.rule_id for r in assessment.reasons} & TG_OR_HDL) is fires
    if fires:
        assert assessment.tier is RiskTier.YELLOW
        assert assessment.follow_up.interval_days == 90


# --- Pregnancy ---------------------------------------------------------------------------------

PREGNANCY = _family("pregnancy.abnormal")


def _pregnant(
    encounters: tuple[Encounter, ...] = (), readings: tuple[Measurement, ...] = (), pregnant: bool = True
) -> PatientHistory:
    return history(
        patient(age=30, sex=Sex.FEMALE, pregnant=pregnant), encounters=encounters, readings=readings
    )


@pytest.mark.parametrize(
    ("case", "fires"),
    [
        pytest.param(_pregnant((visit(days_before(5), bp(139, 89)),)), False, id="office-139-89"),
        pytest.param(_pregnant((visit(days_before(5), bp(140, 80)),)), True, id="office-sbp-140"),
        pytest.param(_pregnant((visit(days_before(5), bp(130, 90)),)), True, id="office-dbp-90"),
        pytest.param(_pregnant((visit(days_before(91), bp(150, 95)),)), False, id="office-bp-91-days-old"),
        pytest.param(_pregnant(readings=(glucose(6.9, days_before(5), HOME),)), False, id="home-fpg-6.9"),
        pytest.param(_pregnant(readings=(glucose(7.0, days_before(5), HOME),)), True, id="home-fpg-7.0"),
        pytest.param(
            _pregnant(readings=(glucose(7.0, days_before(90), LAB),)), True, id="fpg-7.0-90-days-ago"
        ),
        pytest.param(
            _pregnant(readings=(glucose(7.0, days_before(90) - MINUTE, LAB),)),
            False,
            id="fpg-7.0-90-days-1-min",
        ),
        pytest.param(
            _pregnant(readings=(glucose(11.0, days_before(5), LAB, PPG2H),)), False, id="ppg2h-11.0"
        ),
        pytest.param(_pregnant(readings=(glucose(11.1, days_before(5), LAB, PPG2H),)), True, id="ppg2h-11.1"),
        pytest.param(_pregnant(readings=(glucose(11.1, days_before(5), CGM, RPG),)), True, id="cgm-rpg-11.1"),
        pytest.param(_pregnant(readings=(glucose(10.0, days_before(5), CGM, RPG),)), False, id="rpg-10.0"),
        pytest.param(
            _pregnant((visit(days_before(5), bp(150, 95)),), pregnant=False), False, id="not-pregnant-150-95"
        ),
    ],
)
def test_abnormal_bp_or_glucose_in_pregnancy_is_referred(
    pathway: Pathway, case: PatientHistory, fires: bool
) -> None:
    assessment = pathway.assess(case)

    assert bool({r.rule_id for r in assessment.reasons} & PREGNANCY) is fires
    if fires:
        assert assessment.referral is not None
        assert assessment.referral.urgency is ReferralUrgency.ROUTINE


# --- BP and glucose control --------------------------------------------------------------------

BP_UNCONTROLLED = _family("bp.uncontrolled")


def _office(systolic: float, diastolic: float, *conditions: Condition, age: int = 60) -> PatientHistory:
    return history(
        patient(*conditions, age=age), encounters=(visit(days_before(10), bp(systolic, diastolic)),)
    )


def _home(systolic: float, diastolic: float, *conditions: Condition, age: int = 60) -> PatientHistory:
    return history(patient(*conditions, age=age), readings=_home_bps(systolic, diastolic))


@pytest.mark.parametrize(
    ("case", "fires"),
    [
        pytest.param(_office(139, 89, HTN), False, id="age-60-office-139-89"),
        pytest.param(_office(140, 80, HTN), True, id="age-60-office-140-80"),
        pytest.param(_office(130, 90, HTN), True, id="age-60-office-130-90"),
        pytest.param(_office(149, 89, HTN, age=65), False, id="age-65-office-149-89"),
        pytest.param(_office(150, 80, HTN, age=65), True, id="age-65-office-150-80"),
        pytest.param(_office(139, 89, HTN, age=64), False, id="age-64-office-139-89"),
        pytest.param(_office(129, 79, HTN, DM), False, id="diabetic-office-129-79"),
        pytest.param(_office(130, 70, HTN, DM), True, id="diabetic-office-130-70"),
        pytest.param(_office(120, 80, HTN, DM), True, id="diabetic-office-120-80"),
        pytest.param(_office(130, 79, HTN, CKD, age=64), True, id="ckd-64-office-130-79"),
        pytest.param(_office(148, 88, HTN, DM, age=65), False, id="diabetic-65-office-148-88"),
        pytest.param(_home(134, 84, HTN), False, id="home-134-84"),
        pytest.param(_home(135, 80, HTN), True, id="home-135-80"),
        pytest.param(_home(130, 85, HTN), True, id="home-130-85"),
        pytest.param(_home(144, 84, HTN, age=65), False, id="age-65-home-144-84"),
        pytest.param(_home(145, 80, HTN, age=65), True, id="age-65-home-145-80"),
        pytest.param(_home(129, 79, HTN, DM), False, id="diabetic-home-129-79"),
        pytest.param(_home(130, 79, HTN, DM), True, id="diabetic-home-130-79"),
        pytest.param(_office(150, 95), False, id="not-hypertensive-office-150-95"),
        pytest.param(
            history(patient(HTN), encounters=(visit(days_before(90) - MINUTE, bp(150, 95)),)),
            False,
            id="office-bp-older-than-90-days",
        ),
    ],
)
def test_bp_at_target_is_uncontrolled(pathway: Pathway, case: PatientHistory, fires: bool) -> None:
    assert bool(_fired_of(pathway, case, BP_UNCONTROLLED)) is fires


GLU_UNCONTROLLED = _family("glu.uncontrolled")


@pytest.mark.parametrize(
    ("case", "fires"),
    [
        pytest.param(_visits(DM, glucose(6.9)), False, id="fpg-6.9"),
        pytest.param(_visits(DM, glucose(7.0)), True, id="fpg-7.0"),
        pytest.param(_visits(DM, glucose(9.9, kind=RPG)), False, id="rpg-9.9"),
        pytest.param(_visits(DM, glucose(10.0, kind=PPG2H)), True, id="ppg2h-10.0"),
        pytest.param(
            _visits(DM, glucose(6.0), glucose(8.0, kind=RPG)), False, id="newest-rpg-8.0-controlled"
        ),
        pytest.param(
            history(patient(DM), encounters=(visit(days_before(90) - MINUTE, glucose(8.0)),)),
            False,
            id="fpg-8.0-older-than-90-days",
        ),
        pytest.param(_with(DM, readings=(_lab(HBA1C, 7.0, days=180),)), True, id="hba1c-7.0-180-days"),
        pytest.param(_with(DM, readings=(_lab(HBA1C, 6.9, days=180),)), False, id="hba1c-6.9-180-days"),
        pytest.param(_with(DM, readings=(_lab(HBA1C, 7.0, days=181),)), False, id="hba1c-7.0-181-days"),
        pytest.param(_visits(HTN, glucose(8.0)), False, id="not-diabetic-fpg-8.0"),
    ],
)
def test_glucose_at_target_is_uncontrolled(pathway: Pathway, case: PatientHistory, fires: bool) -> None:
    assert bool(_fired_of(pathway, case, GLU_UNCONTROLLED)) is fires


# --- Data gap ----------------------------------------------------------------------------------

DATA_GAP = _family("data.gap")


@pytest.mark.parametrize(
    ("case", "fires"),
    [
        pytest.param(_office(128, 78, HTN), False, id="htn-bp-10-days-ago"),
        pytest.param(
            history(patient(HTN), encounters=(visit(days_before(90), bp(128, 78)),)),
            False,
            id="htn-bp-90-days-ago",
        ),
        pytest.param(
            history(patient(HTN), encounters=(visit(days_before(90) - MINUTE, bp(128, 78)),)),
            True,
            id="htn-bp-90-days-1-min-ago",
        ),
        pytest.param(
            _with(HTN, readings=(bp(128, 78, days_before(90), HOME),)), False, id="htn-home-bp-counts"
        ),
        pytest.param(_with(HTN), True, id="htn-no-bp-ever"),
        pytest.param(
            _with(DM, readings=(glucose(6.0, days_before(90), HOME),)), False, id="dm-glucose-90-days"
        ),
        pytest.param(
            _with(DM, readings=(glucose(6.0, days_before(90) - MINUTE, HOME),)),
            True,
            id="dm-glucose-90-days-1-min",
        ),
        pytest.param(_with(DM, readings=(_lab(HBA1C, 6.5, days=30),)), False, id="dm-hba1c-only-counts"),
        pytest.param(
            _with(DM, readings=(bp(128, 78, days_before(5), HOME),)), True, id="dm-bp-does-not-count"
        ),
        pytest.param(_with(DM), True, id="dm-nothing-ever"),
        pytest.param(_with(DYS, readings=(_lab(LDL, 2.0, days=365),)), False, id="dys-ldl-365-days"),
        pytest.param(
            _with(DYS, readings=(lab(LDL, 2.0, days_before(365) - MINUTE),)),
            True,
            id="dys-ldl-365-days-1-min",
        ),
        pytest.param(_with(DYS, readings=(_lab(TC, 4.0, days=100),)), False, id="dys-tc-only-counts"),
        pytest.param(_with(DYS, readings=(_lab(HDL, 1.2, days=10),)), True, id="dys-hdl-only-is-a-gap"),
        pytest.param(_with(DYS), True, id="dys-nothing-ever"),
        pytest.param(_with(CKD), False, id="ckd-alone-has-no-gap-rule"),
        pytest.param(_with(), False, id="no-condition"),
    ],
)
def test_missing_measurement_is_a_data_gap(pathway: Pathway, case: PatientHistory, fires: bool) -> None:
    assessment = pathway.assess(case)

    assert bool({r.rule_id for r in assessment.reasons} & DATA_GAP) is fires
    gap_tasks = _tasks(assessment, TaskKind.DATA_GAP)
    if fires:
        assert [(t.due, t.priority, t.rule_id) for t in gap_tasks] == [(AS_OF, 4, "data.gap")]
        assert assessment.follow_up.interval_days == 14
    else:
        assert gap_tasks == []


def test_every_rule_of_the_pack_has_a_boundary_table(default_pack: LoadedPack) -> None:
    assert {rule.id for rule in default_pack.pack.rules} == COVERED


# --- Assessment: tier, level, referral ---------------------------------------------------------

LDL_SEVERE = _lab(LDL, 5.0)


@pytest.mark.parametrize(
    ("case", "tier", "level"),
    [
        pytest.param(controlled_hypertensive(), RiskTier.BLUE, ManagementLevel.HOME, id="blue-is-home"),
        pytest.param(_office(150, 95, HTN), RiskTier.YELLOW, ManagementLevel.BASE, id="yellow-is-base"),
        pytest.param(
            history(patient(HTN), encounters=(visit(days_before(10), bp(150, 95)),), readings=(LDL_SEVERE,)),
            RiskTier.RED,
            ManagementLevel.CENTER,
            id="red-and-yellow-is-red-center",
        ),
        pytest.param(
            _with(HTN, readings=(bp(186, 102, hours_before(2), HOME), bp(128, 78, days_before(3), CLINIC))),
            RiskTier.BLUE,
            ManagementLevel.HOME,
            id="blue-unconfirmed-crisis-alone-is-blue",
        ),
    ],
)
def test_worst_tier_wins_and_sets_the_management_level(
    pathway: Pathway, case: PatientHistory, tier: RiskTier, level: ManagementLevel
) -> None:
    assessment = pathway.assess(case)

    assert (assessment.tier, assessment.level) == (tier, level)
    assert max((r.tier for r in assessment.reasons), key=lambda t: t.severity, default=RiskTier.BLUE) is tier


def test_reasons_of_every_tier_are_kept(pathway: Pathway) -> None:
    case = history(patient(HTN), encounters=(visit(days_before(10), bp(150, 95)),), readings=(LDL_SEVERE,))

    reasons = {r.rule_id: r.tier for r in pathway.assess(case).reasons}

    assert reasons["lipid.severe"] is RiskTier.RED
    assert reasons["bp.uncontrolled"] is RiskTier.YELLOW


REFERRAL_TASKS = (TaskKind.EMERGENCY_REFERRAL, TaskKind.URGENT_REFERRAL, TaskKind.ROUTINE_REFERRAL)


@pytest.mark.parametrize(
    ("case", "urgency", "rule_id"),
    [
        pytest.param(
            _with(DM, readings=(_home_rpg(33.3), LDL_SEVERE)),
            ReferralUrgency.EMERGENCY,
            "glu.crisis.symptomatic",
            id="emergency-beats-urgent-and-routine",
        ),
        pytest.param(
            history(patient(HTN), encounters=(visit(hours_before(1), bp(186, 104)),), readings=(LDL_SEVERE,)),
            ReferralUrgency.URGENT,
            "bp.crisis",
            id="urgent-beats-routine",
        ),
        pytest.param(
            _with(DYS, readings=(_lab(TG, 11.3),)),
            ReferralUrgency.URGENT,
            "lipid.severe.tg_very_high",
            id="tg-11.3-urgent-beats-its-routine",
        ),
        pytest.param(
            _with(DYS, readings=(LDL_SEVERE,)), ReferralUrgency.ROUTINE, "lipid.severe", id="routine"
        ),
        pytest.param(_office(150, 95, HTN), None, None, id="yellow-has-no-referral"),
    ],
)
def test_most_urgent_referral_wins_with_one_referral_task(
    pathway: Pathway, case: PatientHistory, urgency: ReferralUrgency | None, rule_id: str | None
) -> None:
    assessment = pathway.assess(case)

    referral = assessment.referral
    assert (referral.urgency if referral else None, referral.rule_id if referral else None) == (
        urgency,
        rule_id,
    )
    referral_tasks = [t for t in assessment.tasks if t.kind in REFERRAL_TASKS]
    follow_ups = _tasks(assessment, TaskKind.REFERRAL_FOLLOW_UP)
    if urgency is None:
        assert referral_tasks == []
        assert follow_ups == []
    else:
        assert [t.kind.value for t in referral_tasks] == [f"{urgency.value}_referral"]
        assert referral_tasks[0].rule_id == rule_id
        assert [(t.due, t.priority) for t in follow_ups] == [(AS_OF + timedelta(days=14), 3)]


@pytest.mark.parametrize(
    ("case", "kind", "due", "priority"),
    [
        pytest.param(
            history(
                patient(HTN),
                encounters=(visit(hours_before(1), bp(186, 104), symptoms=(Symptom.SEVERE_HEADACHE,)),),
            ),
            TaskKind.EMERGENCY_REFERRAL,
            AS_OF,
            1,
            id="emergency-now",
        ),
        pytest.param(
            _at_clinic(HTN, readings=(bp(186, 104),)),
            TaskKind.URGENT_REFERRAL,
            AS_OF + timedelta(hours=24),
            2,
            id="urgent-within-24-h",
        ),
        pytest.param(
            _with(DYS, readings=(LDL_SEVERE,)),
            TaskKind.ROUTINE_REFERRAL,
            AS_OF + timedelta(days=14),
            3,
            id="routine-within-14-days",
        ),
    ],
)
def test_referral_creates_its_task_and_a_follow_up_14_days_later(
    pathway: Pathway, case: PatientHistory, kind: TaskKind, due: datetime, priority: int
) -> None:
    assessment = pathway.assess(case)

    assert [(t.due, t.priority) for t in _tasks(assessment, kind)] == [(due, priority)]
    follow_up = _tasks(assessment, TaskKind.REFERRAL_FOLLOW_UP)
    assert [(t.due, t.priority) for t in follow_up] == [(AS_OF + timedelta(days=14), 3)]
    assert assessment.referral is not None
    assert follow_up[0].rule_id == assessment.referral.rule_id


# --- Assessment: follow-up ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "interval", "rule_id"),
    [
        pytest.param(
            history(
                patient(HTN, DM),
                encounters=(visit(days_before(10), bp(150, 95)),),
                readings=(_self(3.5),),
            ),
            7,
            "glu.hypo.mild",
            id="mild-hypo-7-beats-bp-14",
        ),
        pytest.param(
            _with(DM, readings=(_self(3.5), LDL_SEVERE)), 7, "glu.hypo.mild", id="yellow-7-beats-red-14"
        ),
        pytest.param(
            history(
                patient(DYS, complications=((Complication.RETINOPATHY, OLD_ONSET),)),
                readings=(_lab(LDL, 2.0), _lab(TG, 3.0)),
            ),
            30,
            "complication.stable",
            id="stable-complication-30-beats-tg-90",
        ),
        pytest.param(
            _with(DYS, readings=(_lab(LDL, 3.5), _lab(TG, 3.0))),
            42,
            "lipid.above_target",
            id="ldl-above-target-42-beats-tg-90",
        ),
        pytest.param(_with(DYS, readings=(_lab(LDL, 2.0), _lab(TG, 3.0))), 90, "lipid.tg_or_hdl", id="tg-90"),
        pytest.param(controlled_hypertensive(), 90, None, id="nothing-fired-is-90"),
        pytest.param(
            _with(HTN, readings=(bp(186, 102, hours_before(2), HOME), bp(128, 78, days_before(3), CLINIC))),
            90,
            None,
            id="rule-without-interval-keeps-90",
        ),
    ],
)
def test_shortest_follow_up_interval_wins(
    pathway: Pathway, case: PatientHistory, interval: int, rule_id: str | None
) -> None:
    follow_up = pathway.assess(case).follow_up

    assert (follow_up.interval_days, follow_up.rule_id) == (interval, rule_id)


@pytest.mark.parametrize(
    ("case", "due"),
    [
        pytest.param(_office(150, 95, HTN), date(2026, 3, 5), id="visit-10-days-ago-plus-14"),
        pytest.param(
            history(patient(HTN), encounters=(visit(days_before(14), bp(150, 95)),)),
            date(2026, 3, 1),
            id="visit-14-days-ago-plus-14-is-today",
        ),
        pytest.param(
            history(patient(HTN), encounters=(visit(days_before(100), bp(150, 95)), visit(days_before(60)))),
            date(2026, 3, 1),
            id="overdue-is-clamped-to-today",
        ),
        pytest.param(controlled_hypertensive(), date(2026, 5, 20), id="blue-visit-10-days-ago-plus-90"),
        pytest.param(_with(), date(2026, 5, 30), id="no-encounter-today-plus-90"),
        pytest.param(_with(HTN), date(2026, 3, 15), id="no-encounter-today-plus-14"),
        pytest.param(
            history(
                patient(HTN), encounters=(visit(datetime(2026, 2, 19, 16, 30, tzinfo=UTC), bp(150, 95)),)
            ),
            date(2026, 3, 6),
            id="encounter-date-is-the-shanghai-date",
        ),
        pytest.param(
            _with(HTN, readings=(bp(150, 95, days_before(10), CLINIC),)),
            date(2026, 3, 5),
            id="implicit-encounter-counts",
        ),
    ],
)
def test_follow_up_is_due_latest_encounter_plus_interval_never_before_today(
    pathway: Pathway, case: PatientHistory, due: date
) -> None:
    assessment = pathway.assess(case)

    assert assessment.follow_up.due == due
    visits = _tasks(assessment, TaskKind.FOLLOW_UP_VISIT)
    assert [t.due for t in visits] == [datetime.combine(due, time(0), tzinfo=CLINIC_TZ)]


@pytest.mark.parametrize(
    ("case", "tier", "priority", "rule_id"),
    [
        pytest.param(_with(DYS, readings=(LDL_SEVERE,)), RiskTier.RED, 3, "lipid.severe", id="red-3"),
        pytest.param(_office(150, 95, HTN), RiskTier.YELLOW, 4, "bp.uncontrolled", id="yellow-4"),
        pytest.param(controlled_hypertensive(), RiskTier.BLUE, 5, "policy.default_follow_up", id="blue-5"),
    ],
)
def test_follow_up_visit_priority_follows_the_tier(
    pathway: Pathway, case: PatientHistory, tier: RiskTier, priority: int, rule_id: str
) -> None:
    assessment = pathway.assess(case)

    assert assessment.tier is tier
    assert [(t.priority, t.rule_id) for t in _tasks(assessment, TaskKind.FOLLOW_UP_VISIT)] == [
        (priority, rule_id)
    ]


@pytest.mark.parametrize(
    ("measured_days_ago", "due"),
    [
        pytest.param(10, days_before(10) + timedelta(days=42), id="10-days-ago-due-in-32-days"),
        pytest.param(41, days_before(41) + timedelta(days=42), id="41-days-ago-due-tomorrow"),
        pytest.param(42, AS_OF, id="42-days-ago-due-now"),
        pytest.param(100, AS_OF, id="100-days-ago-never-before-as-of"),
    ],
)
def test_lipid_recheck_is_due_42_days_after_the_ldl_never_before_as_of(
    pathway: Pathway, measured_days_ago: float, due: datetime
) -> None:
    assessment = pathway.assess(history(LOW, readings=(_lab(LDL, 3.5, days=measured_days_ago),)))

    rechecks = _tasks(assessment, TaskKind.LIPID_RECHECK)
    assert [(t.due, t.priority, t.rule_id) for t in rechecks] == [(due, 4, "lipid.above_target")]


def test_no_lipid_recheck_below_target(pathway: Pathway) -> None:
    assert _tasks(pathway.assess(history(LOW, readings=(_lab(LDL, 3.3),))), TaskKind.LIPID_RECHECK) == []


# --- Assessment: provenance --------------------------------------------------------------------

BUSY = history(
    patient(HTN, DM, DYS, complications=((Complication.CHD, OLD_ONSET),), smoker=True),
    encounters=(
        visit(days_before(40), bp(150, 95), glucose(7.5)),
        visit(hours_before(1), bp(186, 104), glucose(7.8), symptoms=(Symptom.SEVERE_HEADACHE,)),
    ),
    readings=(_self(3.5), _lab(LDL, 5.0), _lab(TG, 3.0), _lab(HBA1C, 7.6)),
)


def test_every_reason_carries_its_rule_id_evidence_and_source(
    pathway: Pathway, default_pack: LoadedPack
) -> None:
    assessment = pathway.assess(BUSY)

    assert len(assessment.reasons) >= 8
    for reason in assessment.reasons:
        rule = default_pack.pack.rule(reason.rule_id)
        assert reason.tier is rule.tier
        assert (reason.message, reason.message_en) == (rule.then.message.zh, rule.then.message.en)
        assert reason.source == rule.source
        assert reason.evidence, reason.rule_id
        for name, value in reason.evidence.items():
            assert assessment.facts[name] == value, (reason.rule_id, name)


def test_evidence_names_the_facts_the_rule_compared(pathway: Pathway) -> None:
    reasons = {r.rule_id: r for r in pathway.assess(_office(150, 95, HTN)).reasons}

    evidence = reasons["bp.uncontrolled"].evidence
    assert evidence["office_sbp"] == 150.0
    assert evidence["bp_target_sbp"] == 140.0
    assert evidence["has_hypertension"] is True


def test_assessment_carries_pack_id_version_and_sha256(pathway: Pathway, default_pack: LoadedPack) -> None:
    pack = pathway.assess(BUSY).pack

    assert (pack.id, pack.version) == ("sangao-cn", "2020.4")
    assert pack.sha256 == hashlib.sha256(default_pack.path.read_bytes()).hexdigest()
