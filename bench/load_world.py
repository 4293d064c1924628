"""The mixed-load benchmark's world (bench/load.py): its constants, keys and pacing, patients,
and the synthetic bodies the clients send."""

from __future__ import annotations

import argparse
import os
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bench.ingest import (
    OFFSET_TZ,
)

TARGET_RPS = 300.0
TARGET_SECONDS = 60.0
WINDOW_SECONDS = 10.0
EHR_SOURCE = "bench-ehr"
PACE_SHARE = 0.9  # of the server's per-key limit
PACE_BURST = 10.0
MAX_TRANSPORT_ERRORS = 50  # per thread: past this the server is gone
NOTES = 3

GATEWAY, ENCOUNTER, READ, TEAM = 0.50, 0.20, 0.20, 0.10
REPLAY, RESEND, ENCOUNTER_RESEND = 0.05, 0.02, 0.05


# --- keys, pacing, patients ------------------------------------------------------------------------


class Pacer:
    """A client-side token bucket (GCRA) per key: at most ``per_second``, bursts of ``burst``."""

    def __init__(self, per_second: float, burst: float = PACE_BURST) -> None:
        self.interval = 1 / per_second if per_second > 0 else 0.0
        self.tolerance = burst * self.interval
        self._tat = 0.0
        self._lock = threading.Lock()
        self.waited = 0.0

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            tat = max(self._tat, now)
            delay = tat - self.tolerance - now
            self._tat = tat + self.interval
            if delay > 0:
                self.waited += delay
        if delay > 0:
            time.sleep(delay)


@dataclass
class Key:
    name: str
    id: int
    token: str
    pacer: Pacer

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json", **extra}


@dataclass
class PatientRef:
    index: int
    team: int  # index into World.teams
    gateway: Key
    profile: str  # controlled | uncontrolled | crisis
    diabetic: bool
    id: int = 0


@dataclass
class World:
    """Everything the client threads share: keys, patients, and the per-patient time counters."""

    seed: int
    anchor: datetime
    ehr: Key
    teams: list[tuple[int, str, Key]]  # (team id, code, key)
    gateways: list[Key]
    patients: list[PatientRef]
    _readings: Counter[int] = field(default_factory=Counter)
    _visits: Counter[int] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take_readings(self, patient: int, count: int) -> range:
        with self._lock:
            start = self._readings[patient]
            self._readings[patient] += count
        return range(start, start + count)

    def take_visit(self, patient: int) -> int:
        with self._lock:
            n = self._visits[patient]
            self._visits[patient] += 1
        return n

    def all_keys(self) -> list[Key]:
        return [self.ehr, *self.gateways, *(key for _, _, key in self.teams)]


def provision(url: str, args: argparse.Namespace, per_second: float) -> World:
    """Teams and keys straight into the database (there is no HTTP route for teams)."""
    from sqlmodel import Session

    from pathway.access import permissions
    from pathway.clinical.clock import SystemClock
    from pathway.store.db import make_engine

    def key(session: Session, role: permissions.Role, name: str, team: str | None = None) -> Key:
        # a gateway or ehr key posts only as its registered source system: the name the clients send
        row, token = permissions.create_key(session, role, name, now, team, source_system=name)
        assert row.id is not None
        return Key(name, row.id, token, Pacer(per_second * PACE_SHARE, burst))

    burst = min(PACE_BURST, float(os.environ.get("PATHWAY_RATE_LIMIT_BURST", PACE_BURST)))

    now = SystemClock().now()
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            teams: list[tuple[int, str, Key]] = []
            for t in range(args.teams):
                code = f"bench-team-{t + 1}"
                team = permissions.create_team(session, code, f"基准团队{t + 1}", "home")
                assert team.id is not None
                teams.append((team.id, code, key(session, permissions.Role.TEAM, f"bench-{code}", code)))
            gateways = [
                key(session, permissions.Role.GATEWAY, f"bench-gw-{g + 1}") for g in range(args.gateways)
            ]
            ehr = key(session, permissions.Role.EHR, EHR_SOURCE)
            session.commit()
    finally:
        engine.dispose()
    rng = random.Random(args.seed)
    patients = [
        PatientRef(
            index=i,
            team=i % args.teams,
            gateway=gateways[i % args.gateways],
            profile=rng.choices(("controlled", "uncontrolled", "crisis"), (60, 30, 10))[0],
            diabetic=rng.random() < 0.4,
        )
        for i in range(args.patients)
    ]
    return World(args.seed, datetime.now(OFFSET_TZ).replace(microsecond=0), ehr, teams, gateways, patients)


# --- synthetic data --------------------------------------------------------------------------------


def patient_body(p: PatientRef, team_code: str) -> dict[str, Any]:
    conditions = ["hypertension", "diabetes"] if p.diabetic else ["hypertension"]
    if p.index % 3 == 0:
        conditions.append("dyslipidemia")
    return {
        "source_system": EHR_SOURCE,
        "external_id": f"load-{p.index:05d}",
        "team_code": team_code,
        "name": f"患者{p.index:05d}",
        "sex": "male" if p.index % 2 else "female",
        "birth_date": f"{1940 + p.index % 40}-{1 + p.index % 12:02d}-{1 + p.index % 28:02d}",
        "conditions": conditions,
    }


def blood_pressure(rng: random.Random, profile: str) -> tuple[int, int]:
    if profile == "crisis" and rng.random() < 0.04:
        return rng.randint(182, 198), rng.randint(100, 122)
    if profile == "controlled":
        return rng.randint(112, 136), rng.randint(66, 86)
    return rng.randint(138, 168), rng.randint(82, 102)


def reading_body(world: World, rng: random.Random, p: PatientRef, n: int) -> dict[str, Any]:
    at = world.anchor - timedelta(days=n % 6, minutes=10 + 2 * (n // 6))
    common = {"measured_at": at.isoformat(), "source_reading_id": f"p{p.index}-r{n}"}
    if p.diabetic and n % 8 == 7:
        value = round(rng.uniform(6.0, 10.5) if p.profile != "controlled" else rng.uniform(4.8, 7.2), 1)
        return {
            "kind": "fpg",
            "value": value,
            "source": "home",
            "device_id": f"glucometer-{p.index}",
            **common,
        }
    systolic, diastolic = blood_pressure(rng, p.profile)
    return {
        "kind": "bp",
        "systolic": systolic,
        "diastolic": diastolic,
        "pulse": rng.randint(56, 96),
        "unit": "mmHg",
        "source": "wearable",
        "device_id": f"cuff-{p.index}",
        **common,
    }


def encounter_body(world: World, rng: random.Random, p: PatientRef, visit: int) -> dict[str, Any]:
    at = world.anchor - timedelta(days=9 * visit, minutes=30 + p.index % 50)
    systolic, diastolic = blood_pressure(rng, p.profile)
    fpg = rng.uniform(6.5, 11.0) if p.diabetic else rng.uniform(4.5, 6.4)
    return {
        "at": at.isoformat(),
        "source_encounter_id": f"p{p.index}-v{visit}",
        "readings": [
            {"kind": "bp", "systolic": systolic, "diastolic": diastolic, "pulse": rng.randint(56, 96)},
            {"kind": "fpg", "value": round(fpg, 1)},
            {"kind": "ldl_c", "value": round(rng.uniform(1.6, 4.4), 1)},
        ],
    }
