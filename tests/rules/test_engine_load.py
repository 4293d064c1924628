"""durable_rules under load, through the session's one engine.

5,000 distinct synthetic hypertensives (deterministic arithmetic on an index, no ``random``) are
evaluated; for every one the rules durable_rules fires equal the plain-Python oracle's, and the
tier equals a tier worked out by hand in this file from the numbers the patient was generated
from. Sessions are deleted after every evaluation (more evaluations than durable_rules' 1,024
live sessions pass), and four threads sharing the engine get the sequential results.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from pathway.clinical.clock import CLINIC_TZ
from pathway.clinical.history import Encounter, Measurement, PatientHistory, PatientProfile
from pathway.clinical.snapshot import Snapshot
from pathway.clinical.tiers import RiskTier
from pathway.clinical.vocabulary import Condition, ReadingSource, Sex, Symptom
from rules.evaluation import Evaluator, assessment_from, reference_fired_rule_ids
from rules.registry import LoadedPack
from tests.builders import AS_OF, born_years_before, bp, days_before, glucose, history, hours_before, visit

# Office BP values at and around the thresholds: targets 130/80, 140/90, 150/90 and crisis 180/110.
SYSTOLIC = (128, 129, 130, 131, 138, 139, 140, 141, 149, 150, 151, 169, 170, 179, 180, 181, 196)
DIASTOLIC = (76, 79, 80, 81, 84, 88, 89, 90, 91, 99, 109, 110, 112)
AGES = tuple(range(59, 70))  # straddles 65, where the office target moves from 140/90 to 150/90
LATEST_VISIT_DAYS_AGO = (1 / 24, 2.0, 20.0, 85.0)  # 1 h (inside the 24 h crisis window) … 85 days
PRIOR_VISIT_GAP_DAYS = 30  # the earlier visit stays inside the 180-day classification window
HOME_CRISIS = (186, 102)
FASTING_GLUCOSE_AT_TARGET = 6.0

LOAD = 5_000
PAST_LIVE_SESSION_LIMIT = 1_100  # durable_rules allows 1,024 live sessions per ruleset
THREADED = 2_000


@dataclass(frozen=True)
class Params:
    """What one synthetic patient is generated from (and what the expected tier is computed from)."""

    index: int
    age: int
    diabetic: bool
    systolic: int
    diastolic: int
    split_reading: bool  # the office BP is the mean of two readings rather than one
    prior: tuple[int, int] | None  # an earlier visit's BP
    latest_days_ago: float
    home_crisis: bool  # one home reading >=180/110 two hours ago
    danger_symptom: bool  # severe headache reported at the latest visit


def params(i: int) -> Params:
    return Params(
        index=i,
        age=AGES[i % len(AGES)],
        diabetic=i % 5 == 0,
        systolic=SYSTOLIC[i % len(SYSTOLIC)],
        diastolic=DIASTOLIC[i % len(DIASTOLIC)],
        split_reading=(i // 4) % 2 == 1,
        prior=None
        if i % 3 == 0
        else (SYSTOLIC[(7 * i) % len(SYSTOLIC)], DIASTOLIC[(5 * i) % len(DIASTOLIC)]),
        latest_days_ago=LATEST_VISIT_DAYS_AGO[i % len(LATEST_VISIT_DAYS_AGO)],
        home_crisis=i % 7 == 0,
        danger_symptom=(i // 11) % 3 == 0,
    )


def patient_history(p: Params) -> PatientHistory:
    """The history ``p`` describes; the index shifts the birthday and the visit time, so every
    patient is distinct without changing anything clinical."""
    conditions = {Condition.HYPERTENSION} | ({Condition.DIABETES} if p.diabetic else set())
    birthday_shift = timedelta(days=(p.index // 1000) % 360)  # birthday already passed this year
    profile = PatientProfile(
        sex=Sex.FEMALE if p.index % 2 else Sex.MALE,
        birth_date=born_years_before(p.age) - birthday_shift,
        conditions=frozenset(conditions),
    )
    latest_at = days_before(p.latest_days_ago) - timedelta(seconds=p.index % 1000)
    readings: tuple[Measurement, ...]
    if p.split_reading:  # two readings whose mean is exactly (systolic, diastolic)
        readings = (
            bp(p.systolic - 1, p.diastolic + 1, latest_at),
            bp(p.systolic + 1, p.diastolic - 1, latest_at),
        )
    else:
        readings = (bp(p.systolic, p.diastolic, latest_at),)
    if p.diabetic:
        readings += (glucose(FASTING_GLUCOSE_AT_TARGET, latest_at),)
    symptoms = (Symptom.SEVERE_HEADACHE,) if p.danger_symptom else ()
    encounters: tuple[Encounter, ...] = (visit(latest_at, *readings, symptoms=symptoms),)
    if p.prior is not None:
        prior_at = latest_at - timedelta(days=PRIOR_VISIT_GAP_DAYS)
        encounters = (visit(prior_at, bp(*p.prior, prior_at)), *encounters)
    home = (bp(*HOME_CRISIS, hours_before(2), ReadingSource.HOME),) if p.home_crisis else ()
    return history(profile, encounters=encounters, readings=home)


def expected_tier(p: Params) -> RiskTier:
    """PATHWAY.md §2–4 for this family of patients, written out by hand."""
    if p.diabetic and p.age < 65:
        target = (130, 80)
    elif p.age < 65:
        target = (140, 90)
    else:
        target = (150, 90)

    def above_target(systolic: int, diastolic: int) -> bool:
        return systolic >= target[0] or diastolic >= target[1]

    def crisis(systolic: int, diastolic: int) -> bool:
        return systolic >= 180 or diastolic >= 110

    office_crisis = crisis(p.systolic, p.diastolic)
    visit_in_last_24h = p.latest_days_ago < 1
    crisis_in_last_24h = p.home_crisis or (office_crisis and visit_in_last_24h)
    symptomatic_crisis = p.danger_symptom and visit_in_last_24h and crisis_in_last_24h
    uncontrolled_now = above_target(p.systolic, p.diastolic)
    twice_uncontrolled = p.prior is not None and above_target(*p.prior) and uncontrolled_now
    if office_crisis or symptomatic_crisis or twice_uncontrolled:
        return RiskTier.RED
    if uncontrolled_now:
        return RiskTier.YELLOW
    return RiskTier.BLUE


def patients(count: int, start: int = 0) -> Iterator[tuple[Params, PatientHistory]]:
    for i in range(start, start + count):
        p = params(i)
        yield p, patient_history(p)


def test_the_synthetic_patients_are_distinct_and_cover_every_tier() -> None:
    histories = [h for _, h in patients(LOAD)]
    assert len(set(histories)) == LOAD
    tiers = Counter(expected_tier(p) for p, _ in patients(LOAD))
    assert all(tiers[tier] >= 500 for tier in RiskTier), tiers


def test_5000_patients_fire_the_oracles_rules_and_get_the_hand_computed_tier(
    evaluator: Evaluator, default_pack: LoadedPack
) -> None:
    pack = default_pack.pack
    wrong: list[str] = []
    fired_anywhere: Counter[str] = Counter()
    for p, patient in patients(LOAD):
        snapshot = evaluator.snapshot(patient, AS_OF, default_pack)
        fired = evaluator.engine.fired_rule_ids(pack, snapshot.facts)
        oracle = reference_fired_rule_ids(pack, snapshot.facts)
        if set(fired) != set(oracle):
            wrong.append(f"{p}: engine {sorted(set(fired))} != oracle {sorted(oracle)}")
        if len(fired) != len(set(fired)):
            wrong.append(f"{p}: engine reports a rule twice: {fired}")
        tier = assessment_from(snapshot, default_pack, fired, CLINIC_TZ).tier
        if tier is not expected_tier(p):
            wrong.append(
                f"{p}: tier {tier.value}, expected {expected_tier(p).value}; fired {sorted(set(fired))}"
            )
        fired_anywhere.update(set(fired))
    assert not wrong, f"{len(wrong)} wrong results, e.g.:\n" + "\n".join(wrong[:5])
    for rule_id in (
        "bp.crisis.symptomatic",
        "bp.crisis",
        "bp.crisis.unconfirmed",
        "followup.uncontrolled.twice",
        "bp.uncontrolled",
        "schedule.screening.fundus",
    ):
        assert fired_anywhere[rule_id] > 0, f"the synthetic family never fires {rule_id}"
    assert evaluator.engine.live_sessions() == 0, "durable_rules sessions were left behind"


def test_more_evaluations_in_a_row_than_durable_rules_has_live_sessions_do_not_fail(
    evaluator: Evaluator, default_pack: LoadedPack
) -> None:
    facts = [evaluator.snapshot(h, AS_OF, default_pack).facts for _, h in patients(200, start=LOAD)]
    for i in range(PAST_LIVE_SESSION_LIMIT):
        evaluator.engine.fired_rule_ids(default_pack.pack, facts[i % len(facts)])
    assert evaluator.engine.live_sessions() == 0


def test_four_threads_sharing_the_engine_get_the_sequential_results(
    evaluator: Evaluator, default_pack: LoadedPack
) -> None:
    pack = default_pack.pack
    snapshots: list[Snapshot] = [
        evaluator.snapshot(h, AS_OF, default_pack) for _, h in patients(THREADED, start=2 * LOAD)
    ]

    def evaluate(snapshot: Snapshot) -> tuple[RiskTier, list[str]]:
        fired = evaluator.engine.fired_rule_ids(pack, snapshot.facts)
        return assessment_from(snapshot, default_pack, fired, CLINIC_TZ).tier, sorted(fired)

    sequential = [evaluate(s) for s in snapshots]
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(evaluate, snapshots))
    differing = [i for i, (a, b) in enumerate(zip(sequential, threaded, strict=True)) if a != b]
    assert not differing, f"{len(differing)} of {THREADED} differ, e.g. #{differing[0]}"
    assert evaluator.engine.live_sessions() == 0


def test_a_rule_whose_any_has_two_true_branches_is_reported_once(
    evaluator: Evaluator, default_pack: LoadedPack
) -> None:
    # durable_rules expands `any` into one path per branch and queues the rule once per true branch.
    over_both = history(
        PatientProfile(
            sex=Sex.MALE, birth_date=born_years_before(60), conditions=frozenset({Condition.HYPERTENSION})
        ),
        encounters=(visit(days_before(3), bp(150, 95, days_before(3))),),
    )
    snapshot = evaluator.snapshot(over_both, AS_OF, default_pack)
    fired = evaluator.engine.fired_rule_ids(default_pack.pack, snapshot.facts)
    assert fired.count("bp.uncontrolled") == 1, fired
