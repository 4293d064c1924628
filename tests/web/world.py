"""A small GP team with known histories, stored through the service layer as the API would have.

Every event is stored at its own moment and the patient reassessed then, so the tier history, the
referrals and the tasks are what the product makes of them. Times are relative to ``now``: the
page tests use a fixed clock, the browser tests the real one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Engine
from sqlmodel import Session

from pathway.access import permissions
from pathway.access.permissions import Role
from pathway.clinical.vocabulary import Condition, ReadingKind, ReadingSource, Sex
from pathway.ingest import recording
from pathway.ingest.inbound import EncounterIn, EncounterReadingIn, PatientIn, ReadingIn
from pathway.patients import reassessment, registration
from pathway.patients.reassessment import PathwayConfig
from pathway.store.tables import Patient

D = Decimal


@dataclass
class World:
    team_a: int
    team_b: int
    patients: dict[str, int]  # by external id
    keys: dict[str, str]  # team-a, team-b, ehr, admin, gateway
    key_ids: dict[str, int] = field(default_factory=dict)


# 王建国 (team A): what his charts must show over the last 12 months.
WANG_BP_CLINIC = 4
WANG_BP_HOME = 6
WANG_GLUCOSE = 7  # 4 at visits, 3 at home
WANG_GLUCOSE_HYPO = 2  # 3.6 at a visit, 3.5 at home
WANG_LDL = 2


def _visit(at: datetime, *readings: EncounterReadingIn, eid: str) -> EncounterIn:
    return EncounterIn(at=at, source_encounter_id=eid, readings=list(readings))


def _bp(systolic: int, diastolic: int) -> EncounterReadingIn:
    return EncounterReadingIn(kind=ReadingKind.BP, systolic=D(systolic), diastolic=D(diastolic))


def _fpg(value: str) -> EncounterReadingIn:
    return EncounterReadingIn(kind=ReadingKind.FPG, value=D(value))


def _lab(kind: ReadingKind, value: str, at: datetime) -> ReadingIn:
    return ReadingIn(kind=kind, value=D(value), source=ReadingSource.LAB, measured_at=at)


class _Store:
    def __init__(self, session: Session, config: PathwayConfig) -> None:
        self.session, self.config = session, config

    def patient(self, data: PatientIn, at: datetime) -> Patient:
        patient, _ = registration.upsert_patient(self.session, data, at)
        reassessment.reassess_or_defer(self.session, patient, self.config, at)
        return patient

    def visit(self, patient: Patient, visit: EncounterIn) -> None:
        at = visit.at + timedelta(minutes=2)
        recording.record_encounter(
            self.session, patient, visit, source_system="ehr", config=self.config, now=at
        )
        reassessment.reassess_or_defer(self.session, patient, self.config, at)

    def readings(self, patient: Patient, items: list[ReadingIn], system: str = "gateway") -> None:
        at = max(r.measured_at for r in items) + timedelta(minutes=2)
        recording.record_readings(
            self.session, patient, items, source_system=system, config=self.config, now=at
        )
        reassessment.reassess_or_defer(self.session, patient, self.config, at)

    def reassess(self, patient: Patient, at: datetime) -> None:
        reassessment.reassess(self.session, patient, self.config, at)


def _person(
    external_id: str, name: str, team: str, sex: Sex, born: date, *conditions: Condition
) -> PatientIn:
    return PatientIn(
        source_system="ehr",
        external_id=external_id,
        team_code=team,
        name=name,
        sex=sex,
        birth_date=born,
        conditions=list(conditions),
    )


def build_world(engine: Engine, config: PathwayConfig, now: datetime) -> World:
    def ago(days: float) -> datetime:
        return (now - timedelta(days=days)).replace(second=0, microsecond=0)

    with Session(engine) as session:
        team_a = permissions.create_team(session, "jimo-01", "即墨 家庭医生团队 1", "home")
        team_b = permissions.create_team(session, "jimo-02", "即墨 家庭医生团队 2", "home")
        store = _Store(session, config)
        ids: dict[str, int] = {}

        wang = store.patient(
            _person(
                "A-001",
                "王建国",
                "jimo-01",
                Sex.MALE,
                date(1958, 4, 10),
                Condition.HYPERTENSION,
                Condition.DIABETES,
            ),
            ago(300),
        )
        store.visit(wang, _visit(ago(280), _bp(150, 95), _fpg("7.8"), eid="A-001-1"))
        store.readings(
            wang, [_lab(ReadingKind.LDL_C, "3.4", ago(190)), _lab(ReadingKind.TC, "5.3", ago(190))], "lab"
        )
        store.visit(wang, _visit(ago(189), _bp(146, 92), _fpg("8.1"), eid="A-001-2"))
        store.visit(wang, _visit(ago(100), _bp(152, 96), _fpg("3.6"), eid="A-001-3"))
        store.readings(
            wang, [_lab(ReadingKind.LDL_C, "3.1", ago(21)), _lab(ReadingKind.TC, "5.0", ago(21))], "lab"
        )
        store.visit(wang, _visit(ago(20), _bp(158, 98), _fpg("8.4"), eid="A-001-4"))
        home_bp = [
            ReadingIn(
                kind=ReadingKind.BP,
                systolic=D(148 - day),
                diastolic=D(90 - day),
                source=ReadingSource.WEARABLE,
                measured_at=ago(day + 0.9),
                device_id="band-7",
            )
            for day in range(1, WANG_BP_HOME + 1)
        ]
        store.readings(wang, home_bp)
        home_fpg = [
            ReadingIn(
                kind=ReadingKind.FPG,
                value=D(v),
                source=ReadingSource.HOME,
                measured_at=ago(day + 0.95),
                device_id="meter-3",
            )
            for day, v in ((3, "6.5"), (2, "3.5"), (1, "7.2"))
        ]
        store.readings(wang, home_fpg)
        ids["A-001"] = wang.id or 0

        li = store.patient(
            _person("A-002", "李秀英", "jimo-01", Sex.FEMALE, date(1950, 9, 2), Condition.HYPERTENSION),
            ago(250),
        )
        store.visit(li, _visit(ago(200), _bp(132, 80), eid="A-002-1"))
        store.visit(li, _visit(ago(40), _bp(128, 78), eid="A-002-2"))
        ids["A-002"] = li.id or 0

        zhang = store.patient(
            _person("A-003", "张伟", "jimo-01", Sex.MALE, date(1970, 1, 15), Condition.DYSLIPIDEMIA), ago(120)
        )
        store.readings(
            zhang, [_lab(ReadingKind.LDL_C, "4.2", ago(60)), _lab(ReadingKind.HDL_C, "0.9", ago(60))], "lab"
        )
        ids["A-003"] = zhang.id or 0

        liu = store.patient(
            _person("A-004", "刘强", "jimo-01", Sex.MALE, date(1962, 6, 30), Condition.HYPERTENSION), ago(90)
        )
        store.visit(liu, _visit(ago(0.1), _bp(186, 112), eid="A-004-1"))
        ids["A-004"] = liu.id or 0

        zhao = store.patient(
            _person("B-001", "赵敏", "jimo-02", Sex.FEMALE, date(1955, 3, 8), Condition.HYPERTENSION),
            ago(200),
        )
        store.visit(zhao, _visit(ago(30), _bp(150, 95), eid="B-001-1"))
        ids["B-001"] = zhao.id or 0

        for patient in (wang, li, zhang, zhao):  # the day's assessment (the daily run would make it)
            store.reassess(patient, now - timedelta(minutes=5))
        keys, key_ids = {}, {}
        for name, role, team in (
            ("team-a", Role.TEAM, "jimo-01"),
            ("team-b", Role.TEAM, "jimo-02"),
            ("ehr", Role.EHR, None),
            ("admin", Role.ADMIN, None),
            ("gateway", Role.GATEWAY, None),
        ):
            key, keys[name] = permissions.create_key(session, role, f"测试 {name}", now, team_code=team)
            key_ids[name] = key.id or 0
        session.commit()
        assert team_a.id is not None
        assert team_b.id is not None
        return World(team_a.id, team_b.id, ids, keys, key_ids)
