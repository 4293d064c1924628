"""A synthetic GP team for the workbench's benchmark and screenshots: patients and a year of their care.

Every event is stored through :mod:`pathway.patients` at its own moment (the clock walks through the
year), and the patient is reassessed then, exactly as the API would have done it live: so the team
has a tier history, assessments made at every month end, referrals and tasks opened and resolved
as the year went by. Deterministic: patient ``i`` of seed ``s`` is drawn from
``random.Random(f"{s}:{i}")`` alone. The values are synthetic data, not clinical thresholds; the
rule pack judges them like any others.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Engine
from sqlmodel import Session

from pathway.access import permissions
from pathway.clinical.policy import UnreachableRetry
from pathway.clinical.vocabulary import Condition, ReadingKind, ReadingSource, Sex
from pathway.ingest import recording
from pathway.ingest.inbound import EncounterIn, EncounterReadingIn, PatientIn, ReadingIn
from pathway.patients import reassessment, registration
from pathway.patients.reassessment import PathwayConfig
from pathway.referrals import referral_flow, referral_store
from pathway.store.tables import Patient
from pathway.tasks import actions, task_store
from pathway.tasks.status import TaskOutcome
from rules.registry import DEFAULT_PACK_ID, PackRegistry

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
)
GIVEN = "建国秀英桂兰玉梅志强国华淑珍丽娟明亮海燕文杰春花德明凤英立新红霞永生金凤振华俊峰"


@dataclass
class _Event:
    at: datetime
    encounter: EncounterIn | None = None
    readings: list[ReadingIn] = field(default_factory=list)


@dataclass(frozen=True)
class SeededTeam:
    team_id: int
    code: str
    patient_ids: list[int]


def _d(value: float, places: int = 0) -> Decimal:
    return Decimal(str(round(value, places))) if places else Decimal(int(round(value)))


def _plan(seed: int, index: int, code: str, now: datetime) -> tuple[PatientIn, datetime, list[_Event]]:
    rng = random.Random(f"{seed}:{index}")
    sex = Sex.MALE if rng.random() < 0.48 else Sex.FEMALE
    age = rng.randint(42, 86)
    conditions = {Condition.HYPERTENSION} if rng.random() < 0.8 else set()
    if rng.random() < 0.4:
        conditions.add(Condition.DIABETES)
    if rng.random() < 0.35 or not conditions:
        conditions.add(Condition.DYSLIPIDEMIA)
    if rng.random() < 0.06:
        conditions.add(Condition.CKD)
    name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
    patient = PatientIn(
        source_system="ehr",
        external_id=f"{code}-{index:05d}",
        team_code=code,
        name=name,
        sex=sex,
        birth_date=date(now.year - age, rng.randint(1, 12), rng.randint(1, 28)),
        conditions=sorted(conditions),
        smoker=sex is Sex.MALE and rng.random() < 0.3,
    )
    registered = now - timedelta(days=rng.uniform(200, 420) if rng.random() < 0.9 else rng.uniform(20, 120))
    events: list[_Event] = []
    bp_base = rng.gauss(134, 12)
    fpg_base = rng.gauss(6.9, 1.2)
    ldl_base = rng.gauss(3.1, 0.7)
    improving = rng.random() < 0.5
    day = registered + timedelta(days=rng.uniform(0, 10))
    visit = 0
    while day < now - timedelta(hours=6):
        at = day.replace(hour=rng.randint(8, 11), minute=rng.randint(0, 59), second=0, microsecond=0)
        if at >= now:
            break
        trend = -visit * rng.uniform(1, 3) if improving else rng.gauss(0, 4)
        readings = []
        if Condition.HYPERTENSION in conditions or rng.random() < 0.3:
            systolic = min(max(bp_base + trend + rng.gauss(0, 8), 100), 200)
            diastolic = min(max(systolic * 0.6 + rng.gauss(4, 5), 58), 118)
            readings.append(
                EncounterReadingIn(kind=ReadingKind.BP, systolic=_d(systolic), diastolic=_d(diastolic))
            )
        if Condition.DIABETES in conditions:
            value = min(max(fpg_base + trend / 20 + rng.gauss(0, 0.9), 3.2), 22)
            readings.append(EncounterReadingIn(kind=ReadingKind.FPG, value=_d(value, 1)))
        events.append(
            _Event(
                at,
                encounter=EncounterIn(
                    at=at, source_encounter_id=f"{code}-{index}-v{visit}", readings=readings
                ),
            )
        )
        if visit % 2 == 0 and (conditions & {Condition.DYSLIPIDEMIA, Condition.DIABETES}):
            lab_at = at - timedelta(hours=1)
            ldl = min(max(ldl_base - (visit * 0.1 if improving else 0) + rng.gauss(0, 0.3), 0.9), 6.5)
            panel = [
                ReadingIn(
                    kind=ReadingKind.LDL_C, value=_d(ldl, 1), source=ReadingSource.LAB, measured_at=lab_at
                ),
                ReadingIn(
                    kind=ReadingKind.TC, value=_d(ldl + 1.9, 1), source=ReadingSource.LAB, measured_at=lab_at
                ),
                ReadingIn(
                    kind=ReadingKind.HDL_C,
                    value=_d(rng.uniform(0.8, 1.6), 1),
                    source=ReadingSource.LAB,
                    measured_at=lab_at,
                ),
            ]
            if Condition.DIABETES in conditions:
                hba1c = min(max(fpg_base * 0.85 + rng.gauss(0, 0.5), 5), 13)
                panel.append(
                    ReadingIn(
                        kind=ReadingKind.HBA1C,
                        value=_d(hba1c, 1),
                        source=ReadingSource.LAB,
                        measured_at=lab_at,
                    )
                )
            events.append(_Event(lab_at, readings=panel))
        visit += 1
        day = at + timedelta(days=rng.uniform(60, 120) if rng.random() < 0.85 else rng.uniform(150, 220))
    _home_streams(rng, events, conditions, registered, now, bp_base, fpg_base)
    events.sort(key=lambda e: e.at)
    return patient, registered, events


def _home_streams(
    rng: random.Random,
    events: list[_Event],
    conditions: set[Condition],
    registered: datetime,
    now: datetime,
    bp_base: float,
    fpg_base: float,
) -> None:
    """A wearable BP stream (a reading most mornings, sent weekly) or a home glucose meter for some."""
    start = max(registered, now - timedelta(days=rng.choice((30, 60, 90))))
    if Condition.HYPERTENSION in conditions and rng.random() < 0.3:

        def cuff(at: datetime) -> ReadingIn:
            systolic = min(max(bp_base - 4 + rng.gauss(0, 9), 95), 200)
            diastolic = min(max(systolic * 0.6 + rng.gauss(3, 5), 55), 115)
            return ReadingIn(
                kind=ReadingKind.BP,
                systolic=_d(systolic),
                diastolic=_d(diastolic),
                source=ReadingSource.WEARABLE,
                measured_at=at,
                device_id="band-1",
            )

        events += _sent_weekly(_mornings(rng, start, now, (7, 0, 50), 0.85, cuff))
    if Condition.DIABETES in conditions and rng.random() < 0.35:
        low = rng.random() < 0.15

        def meter(at: datetime) -> ReadingIn:
            value = min(max(fpg_base + rng.gauss(0, 1.4), 3.3), 21)
            if low and rng.random() < 0.08:
                value = rng.uniform(3.1, 3.8)
            return ReadingIn(
                kind=ReadingKind.FPG,
                value=_d(value, 1),
                source=ReadingSource.HOME,
                measured_at=at,
                device_id="meter-1",
            )

        events += _sent_weekly(_mornings(rng, start, now, (6, 30, 59), 0.7, meter))


def _mornings(
    rng: random.Random,
    start: datetime,
    now: datetime,
    hour_and_minutes: tuple[int, int, int],
    share: float,
    measure: Callable[[datetime], ReadingIn],
) -> list[ReadingIn]:
    """A reading on ``share`` of the mornings from ``start`` until two hours ago, at ``hour`` and a
    minute between the two given."""
    hour, first, last = hour_and_minutes
    readings: list[ReadingIn] = []
    day = start
    while day < now - timedelta(hours=2):
        at = day.replace(hour=hour, minute=rng.randint(first, last), second=0, microsecond=0)
        if at < now and rng.random() < share:
            readings.append(measure(at))
        day += timedelta(days=1)
    return readings


def _sent_weekly(readings: list[ReadingIn]) -> list[_Event]:
    """The readings sent in batches of seven, five minutes after the last of each."""
    batches = [readings[i : i + 7] for i in range(0, len(readings), 7)]
    return [_Event(batch[-1].measured_at + timedelta(minutes=5), readings=batch) for batch in batches]


def seed_team(
    engine: Engine,
    config: PathwayConfig,
    *,
    code: str,
    name: str,
    patients: int,
    now: datetime,
    seed: int = 1,
    progress: bool = False,
) -> SeededTeam:
    """Create the team ``code`` (if new) and ``patients`` patients with a year of care up to ``now``."""
    with Session(engine) as session:
        try:
            team = permissions.team_by_code(session, code)
        except permissions.UnknownTeam:
            team = permissions.create_team(session, code, name, "home")
        session.commit()
        assert team.id is not None
        team_id = team.id
    ids: list[int] = []
    for start in range(0, patients, 100):
        with Session(engine) as session:
            for index in range(start, min(start + 100, patients)):
                ids.append(_store(session, config, code, seed, index, now))
            session.commit()
        if progress:
            print(f"  seeded {min(start + 100, patients):,} / {patients:,} patients", flush=True)
    return SeededTeam(team_id, code, ids)


def _store(session: Session, config: PathwayConfig, code: str, seed: int, index: int, now: datetime) -> int:
    data, registered, events = _plan(seed, index, code, now)
    patient, _created = registration.upsert_patient(session, data, registered)
    reassessment.reassess_or_defer(session, patient, config, registered)
    team = random.Random(f"{seed}:{index}:team")
    for event in _with_month_starts(events, registered, now, config):
        received = event.at + timedelta(minutes=2)
        _follow_through(session, patient, team, received)
        if event.encounter is not None:
            recording.record_encounter(
                session, patient, event.encounter, source_system="ehr", config=config, now=received
            )
        if event.readings:
            source = "lab" if event.readings[0].source is ReadingSource.LAB else "gateway"
            recording.record_readings(
                session, patient, event.readings, source_system=source, config=config, now=received
            )
        reassessment.reassess_or_defer(session, patient, config, received)
    assert patient.id is not None
    return patient.id


def _follow_through(session: Session, patient: Patient, rng: random.Random, now: datetime) -> None:
    """What the team did since the last event: most overdue tasks done, referrals moved along the loop."""
    assert patient.id is not None
    referral = referral_store.active_referral(session, patient.id, referral_flow.ACTIVE)
    if referral is not None and referral.id is not None:
        age = now - referral.updated_at
        if referral.status == "open" and age > timedelta(days=rng.uniform(0.5, 4)) and rng.random() < 0.85:
            referral_flow.advance(
                session, referral.id, "accept", now, receiving_institution="即墨区人民医院 三高中心"
            )
        elif referral.status == "accepted" and age > timedelta(days=rng.uniform(3, 14)):
            referral_flow.advance(session, referral.id, "complete", now, outcome="调整降压/降糖方案")
            if rng.random() < 0.8:
                referral_flow.advance(
                    session,
                    referral.id,
                    "return",
                    now,
                    return_note="病情稳定，下转社区随访",
                    return_follow_up_due=(now + timedelta(days=14)).date(),
                )
    for task in task_store.open_tasks_of(session, patient.id):
        if task.due_at < now - timedelta(days=rng.uniform(1, 20)) and rng.random() < 0.6:
            outcome = TaskOutcome.DONE if rng.random() < 0.9 else TaskOutcome.UNREACHABLE
            actions.record_outcome(session, task, outcome, None, "seed", now, _unreachable_retry())


@functools.cache
def _unreachable_retry() -> UnreachableRetry:
    """What the default pack does with urgent work whose patient was not reached."""
    return (
        PackRegistry.from_directory()
        .in_force(DEFAULT_PACK_ID, on=None)
        .pack.policy.follow_through.unreachable
    )


def _with_month_starts(
    events: list[_Event], registered: datetime, now: datetime, config: PathwayConfig
) -> list[_Event]:
    """The events, with a bare reassessment on the first of each month and one this morning (what the
    daily run does for stale patients), in time order."""
    zone = config.tz
    local = registered.astimezone(zone)
    month = date(local.year, local.month, 1)
    extra = [_Event(now - timedelta(hours=1))]
    while True:
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
        at = datetime(month.year, month.month, month.day, 5, 30, tzinfo=zone)
        if at >= now:
            break
        extra.append(_Event(at))
    return sorted([*events, *extra], key=lambda e: e.at)
