"""Mixed traffic against ``pathway serve --workers N``, then checked (a benchmark, not a test).

    python -m bench.load [--seconds 60] [--workers 2] [--database postgresql|sqlite] [--patients 600]
                         [--teams 3] [--gateways 6] [--concurrency 16] [--seed 5] [--rate-limit 200]

Setup (not timed): a fresh database (PostgreSQL: created with ``CREATE DATABASE`` on
``--postgres-url``'s server and dropped at the end; SQLite: a temporary file, one worker) and the
real server (:func:`bench.ingest.running_server`). In the database directly: ``--teams`` teams,
``--gateways`` gateway keys, one ``ehr`` key and one ``team`` key per team. Over HTTP, with the
ehr key: ``--patients`` patients (``POST /v1/patients`` with a ``team_code``), each linked to one
gateway (``POST /v1/patients/{id}/gateways``).

Traffic: ``--concurrency`` client threads, one keep-alive ``http.client`` connection each, for
``--seconds``; each request drawn from ``random.Random(seed, thread)``:

- 50 % a gateway posts a batch of 10–50 readings (wearable BP; home glucose for diabetics) for one
  of its patients, ``POST /v1/patients/{id}/readings?source_system=<gateway>`` with an
  ``Idempotency-Key``; 5 % of these replay an earlier batch of the thread under the same key
  (the answer must be the first answer, marked ``Idempotent-Replayed``), 2 % re-send one under a
  new key (every item must come back ``duplicate`` with the stored id);
- 20 % the EHR posts a visit with clinic BP, FPG and LDL-C (``POST /v1/patients/{id}/encounters``,
  unique ``source_encounter_id``; 5 % of these re-send an earlier visit: 200, same id);
- 20 % the EHR reads ``GET /v1/patients/{id}/assessment`` or ``GET /v1/patients/{id}`` (half each);
- 10 % a team pulls its list ``GET /v1/teams/{team_id}/tasks?date=<today>``.

Every reading is plausible (patients are controlled, uncontrolled or crisis-prone), has a unique
``source_reading_id`` and a ``measured_at`` with +08:00 in the past: the run's start minus 10 min,
minus 0–5 days, minus 2 min per 6 readings of that patient; visits go back 9 days each, so no two
readings of a patient and device share an instant.

The per-key rate limiter stays ON (``--rate-limit``, the server's default 200/s per key and
process; 0 turns it off): every key is paced on the client to 90 % of the limit, so no key is
ever refused (a 429 would be shown among the non-2xx answers); the time spent waiting is printed.

Afterwards, with the server stopped, the database is read directly: every reading acknowledged in
a 2xx answer (item ``created`` or ``duplicate``) is stored exactly once under its
(source_system, source_reading_id), with the id the answer named, and no key is stored twice;
every acknowledged visit is stored once with its three readings; every patient's latest stored
assessment has the tier of a fresh evaluation of its stored history as of the same instant, under
the pack it names (``Evaluator.assess(history_of(session, patient), record.as_of)``), and saw the
same facts (else it missed readings committed concurrently: a stale assessment, even if the tier
happens to agree). Printed: p50/p99/max per endpoint, requests/s overall and in the slowest 10 s,
CPU seconds of the client, of each server process and of everything else on the machine (from
``/proc``, Linux), the server log's error lines, and a table ending with the target of issue #5
(≥ 300 mixed requests/s for 60 s on PostgreSQL, zero 5xx, zero lost or duplicated readings, zero
tier mismatches), each marked pass or FAIL. Exit status 1 if the run broke or a correctness check
failed (5xx, transport errors, lost/duplicated/misattributed readings or visits, a changed
idempotent replay, a tier mismatch or a stale assessment); a missed throughput target is
information only (exit 0).

The client threads share the machine (and its CPUs) with the server and the database.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import random
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench.figures import emit
from bench.ingest import (
    DEFAULT_POSTGRES_URL,
    HOST,
    OFFSET_TZ,
    REQUEST_TIMEOUT,
    BenchmarkBroken,
    fresh_database,
    redact,
    running_server,
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

    from pathway import access
    from pathway.clock import SystemClock
    from pathway.db import make_engine

    def key(session: Session, role: access.Role, name: str, team: str | None = None) -> Key:
        row, token = access.create_key(session, role, name, now, team)
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
                team = access.create_team(session, code, f"基准团队{t + 1}", "home")
                assert team.id is not None
                teams.append((team.id, code, key(session, access.Role.TEAM, f"bench-{code}", code)))
            gateways = [key(session, access.Role.GATEWAY, f"bench-gw-{g + 1}") for g in range(args.gateways)]
            ehr = key(session, access.Role.EHR, EHR_SOURCE)
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


def register(port: int, world: World, threads: int) -> None:
    """Patients over HTTP with the ehr key, each linked to its gateway (a few threads at once)."""
    failures: list[str] = []

    def register_share(share: list[PatientRef]) -> None:
        connection = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT)
        try:
            for p in share:
                _, code, _ = world.teams[p.team]
                status, _, data = call(connection, world.ehr, "POST", "/v1/patients", patient_body(p, code))
                if status != 201:
                    raise BenchmarkBroken(f"POST /v1/patients answered {status}: {data[:300]!r}")
                p.id = int(json.loads(data)["id"])
                path, body = f"/v1/patients/{p.id}/gateways", {"api_key_id": p.gateway.id}
                status, _, data = call(connection, world.ehr, "POST", path, body)
                if status != 204:
                    raise BenchmarkBroken(f"POST {path} answered {status}: {data[:300]!r}")
        except (BenchmarkBroken, OSError, http.client.HTTPException) as error:
            failures.append(f"registering patients: {type(error).__name__}: {error}")
        finally:
            connection.close()

    workers = [
        threading.Thread(target=register_share, args=(world.patients[k::threads],), name=f"register-{k}")
        for k in range(threads)
    ]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    if failures:
        raise BenchmarkBroken(failures[0])


# --- CPU accounting (Linux /proc; empty elsewhere) -------------------------------------------------


def cpu_ticks(pids: list[int]) -> dict[int, int]:
    """User + system clock ticks of each process still alive."""
    ticks: dict[int, int] = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks[pid] = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    except (OSError, ValueError, IndexError):
        return 0, 0
    return sum(values) - values[3] - values[4], sum(values)  # idle and iowait are not busy


def database_backends(url: str) -> list[int]:
    """The PostgreSQL backends serving ``url``'s database now (none for SQLite)."""
    if not url.startswith("postgresql"):
        return []
    from sqlalchemy import text

    from pathway.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT pid FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).all()
    finally:
        engine.dispose()
    return [int(row[0]) for row in rows]


def server_processes(port: int) -> list[int]:
    """``pathway serve --port P`` and its descendants (the uvicorn workers), found in /proc."""
    parents: dict[int, int] = {}
    roots: list[int] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
            parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if b"serve" in command and b"--port" in command and str(port).encode() in command:
            roots.append(int(entry.name))
    found = list(roots)
    for pid in found:  # grows while iterating: breadth-first over the children
        found.extend(child for child, parent in parents.items() if parent == pid and child not in found)
    return found


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


# --- the client ------------------------------------------------------------------------------------


def call(
    connection: http.client.HTTPConnection,
    key: Key,
    method: str,
    path: str,
    body: Any = None,
    **headers: str,
) -> tuple[int, http.client.HTTPResponse, bytes]:
    key.pacer.wait()
    payload = json.dumps(body).encode() if body is not None else None
    connection.request(method, path, body=payload, headers=key.headers(**headers))
    response = connection.getresponse()
    return response.status, response, response.read()


@dataclass
class Sent:
    """A batch answered 2xx, kept so the gateway can retry it."""

    key: Key
    path: str
    body: list[dict[str, Any]]
    idempotency_key: str
    answer: Any


@dataclass
class ClientStats:
    calls: list[tuple[str, int, float, float]] = field(default_factory=list)  # endpoint, status, s, end
    transport_errors: int = 0
    notes: list[str] = field(default_factory=list)
    readings_sent: int = 0
    acked: dict[tuple[str, str], int] = field(default_factory=dict)  # (system, source id) -> reading id
    created: int = 0
    duplicate: int = 0
    rejected: int = 0
    fresh_duplicates: int = 0  # items of a first post reported duplicate: a natural-key collision
    replays: int = 0
    replay_mismatches: int = 0
    resends: int = 0
    resend_mismatches: int = 0
    visits: dict[str, int] = field(default_factory=dict)  # source_encounter_id -> encounter id
    visit_resends: int = 0
    visit_resend_mismatches: int = 0
    list_items: int = 0

    def note(self, text: str) -> None:
        if len(self.notes) < NOTES:
            self.notes.append(text[:300])


class Client:
    def __init__(self, k: int, port: int, world: World, began: list[float], deadline: list[float]) -> None:
        self.k, self.port, self.world = k, port, world
        self.rng = random.Random(world.seed * 1_000 + k)
        self.stats = ClientStats()
        self._began, self._deadline = began, deadline
        self._sent: deque[Sent] = deque(maxlen=8)
        self._visits: deque[tuple[int, dict[str, Any], int]] = deque(maxlen=8)
        self._batches = 0
        self.connection = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT)

    def run(self, start: threading.Barrier) -> None:
        start.wait()
        try:
            while time.perf_counter() < self._deadline[0]:
                if self.stats.transport_errors >= MAX_TRANSPORT_ERRORS:
                    break
                draw = self.rng.random()
                if draw < GATEWAY:
                    self.gateway()
                elif draw < GATEWAY + ENCOUNTER:
                    self.encounter()
                elif draw < GATEWAY + ENCOUNTER + READ:
                    self.read()
                else:
                    self.team_list()
        finally:
            self.connection.close()

    def request(
        self, endpoint: str, key: Key, method: str, path: str, body: Any = None, **headers: str
    ) -> tuple[int, http.client.HTTPResponse | None, Any]:
        t0 = time.perf_counter()
        try:
            status, response, data = call(self.connection, key, method, path, body, **headers)
        except (OSError, http.client.HTTPException) as error:
            self.stats.transport_errors += 1
            self.stats.note(f"{endpoint}: transport: {type(error).__name__}: {error}")
            self.stats.calls.append((endpoint, 0, time.perf_counter() - t0, t0 - self._began[0]))
            self.connection.close()
            self.connection = http.client.HTTPConnection(HOST, self.port, timeout=REQUEST_TIMEOUT)
            time.sleep(0.05)
            return 0, None, None
        t1 = time.perf_counter()
        self.stats.calls.append((endpoint, status, t1 - t0, t1 - self._began[0]))
        if not 200 <= status < 300:
            self.stats.note(f"{endpoint}: {status}: {data.decode(errors='replace')}")
            return status, response, None
        return status, response, json.loads(data) if data else None

    def gateway(self) -> None:
        draw = self.rng.random()
        if self._sent and draw < REPLAY + RESEND:
            sent = self._sent[self.rng.randrange(len(self._sent))]
            if draw < REPLAY:
                self.replay(sent)
            else:
                self.resend(sent)
            return
        p = self.world.patients[self.rng.randrange(len(self.world.patients))]
        count = self.rng.randint(10, 50)
        body = [reading_body(self.world, self.rng, p, n) for n in self.world.take_readings(p.index, count)]
        path = f"/v1/patients/{p.id}/readings?source_system={p.gateway.name}"
        self._batches += 1
        idempotency_key = f"t{self.k}-b{self._batches}"
        self.stats.readings_sent += count
        status, _, answer = self.request(
            "POST readings", p.gateway, "POST", path, body, **{"Idempotency-Key": idempotency_key}
        )
        if answer is None:
            return
        self.acknowledge(p.gateway.name, body, answer)
        self.stats.fresh_duplicates += int(answer["duplicate"])
        self._sent.append(Sent(p.gateway, path, body, idempotency_key, answer))

    def acknowledge(self, system: str, body: list[dict[str, Any]], answer: dict[str, Any]) -> None:
        s = self.stats
        s.created += int(answer["created"])
        s.duplicate += int(answer["duplicate"])
        s.rejected += int(answer["rejected"])
        for item in answer["items"]:
            if item["status"] in ("created", "duplicate"):
                s.acked[(system, body[item["index"]]["source_reading_id"])] = int(item["reading_id"])
            else:
                s.note(f"item not stored: {item}")

    def replay(self, sent: Sent) -> None:
        """The gateway lost the answer and retries under the same key: the first answer comes back."""
        self.stats.replays += 1
        status, response, answer = self.request(
            "POST readings (replay)", sent.key, "POST", sent.path, sent.body,
            **{"Idempotency-Key": sent.idempotency_key},
        )  # fmt: skip
        if response is None or answer is None:
            return
        replayed = response.getheader("Idempotent-Replayed") == "true"
        if status != 201 or not replayed or answer != sent.answer:
            self.stats.replay_mismatches += 1
            self.stats.note(f"replay: {status}, replayed={replayed}, same answer={answer == sent.answer}")

    def resend(self, sent: Sent) -> None:
        """The gateway lost its state and re-sends under a new key: every item is a duplicate."""
        self.stats.resends += 1
        self._batches += 1
        status, _, answer = self.request(
            "POST readings (resend)", sent.key, "POST", sent.path, sent.body,
            **{"Idempotency-Key": f"t{self.k}-b{self._batches}"},
        )  # fmt: skip
        if answer is None:
            return
        first = {item["index"]: item["reading_id"] for item in sent.answer["items"]}
        again = {item["index"]: item["reading_id"] for item in answer["items"]}
        statuses = {item["status"] for item in answer["items"]}
        if statuses != {"duplicate"} or again != first:
            self.stats.resend_mismatches += 1
            self.stats.note(f"resend: statuses {sorted(statuses)}, same ids={again == first}")
        self.acknowledge(sent.key.name, sent.body, answer)

    def encounter(self) -> None:
        ehr = self.world.ehr
        if self._visits and self.rng.random() < ENCOUNTER_RESEND:
            patient_id, body, encounter_id = self._visits[self.rng.randrange(len(self._visits))]
            self.stats.visit_resends += 1
            path = f"/v1/patients/{patient_id}/encounters?source_system={EHR_SOURCE}"
            status, _, answer = self.request("POST encounters (resend)", ehr, "POST", path, body)
            if answer is not None and (status != 200 or answer["encounter_id"] != encounter_id):
                self.stats.visit_resend_mismatches += 1
                self.stats.note(f"visit resend: {status}, {answer.get('encounter_id')} vs {encounter_id}")
            return
        p = self.world.patients[self.rng.randrange(len(self.world.patients))]
        body = encounter_body(self.world, self.rng, p, self.world.take_visit(p.index))
        path = f"/v1/patients/{p.id}/encounters?source_system={EHR_SOURCE}"
        status, _, answer = self.request("POST encounters", ehr, "POST", path, body)
        if answer is None:
            return
        if status != 201 or not answer["created"]:
            self.stats.note(f"visit {body['source_encounter_id']}: {status}, created={answer['created']}")
        self.stats.visits[body["source_encounter_id"]] = int(answer["encounter_id"])
        self._visits.append((p.id, body, int(answer["encounter_id"])))

    def read(self) -> None:
        p = self.world.patients[self.rng.randrange(len(self.world.patients))]
        if self.rng.random() < 0.5:
            self.request("GET assessment", self.world.ehr, "GET", f"/v1/patients/{p.id}/assessment")
        else:
            self.request("GET patient", self.world.ehr, "GET", f"/v1/patients/{p.id}")

    def team_list(self) -> None:
        team_id, _, key = self.world.teams[self.rng.randrange(len(self.world.teams))]
        today = datetime.now(OFFSET_TZ).date().isoformat()
        _, _, answer = self.request("GET team tasks", key, "GET", f"/v1/teams/{team_id}/tasks?date={today}")
        if answer is not None:
            self.stats.list_items = max(self.stats.list_items, int(answer["total"]))


@dataclass
class Traffic:
    elapsed: float
    stats: ClientStats
    cpu_seconds: float  # of this (client) process
    server_cpu: list[float] = field(default_factory=list)  # s per server process: supervisor, workers
    machine_busy: float = math.nan  # share of all CPUs busy during the traffic
    database_cpu: float = math.nan  # s, PostgreSQL backends of this database (missing those that quit)

    def ok(self) -> int:
        return sum(1 for _, status, _, _ in self.stats.calls if 200 <= status < 300)

    def statuses(self) -> Counter[int]:
        return Counter(status for _, status, _, _ in self.stats.calls if status)

    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses().items() if status >= 500)

    def requests_per_s(self) -> float:
        return self.ok() / self.elapsed if self.elapsed else 0.0

    def slowest_window(self) -> float:
        """2xx answers/s in the slowest whole 10 s of the run (nan if the run is shorter)."""
        windows = int(self.elapsed // WINDOW_SECONDS)
        counts = Counter(
            int(end // WINDOW_SECONDS) for _, status, _, end in self.stats.calls if 200 <= status < 300
        )
        return min((counts[w] / WINDOW_SECONDS for w in range(windows)), default=math.nan)


def run_traffic(port: int, world: World, concurrency: int, seconds: float) -> Traffic:
    began, deadline = [0.0], [math.inf]
    clients = [Client(k, port, world, began, deadline) for k in range(concurrency)]
    start = threading.Barrier(concurrency + 1)
    threads = [threading.Thread(target=c.run, args=(start,), name=f"load-{c.k}") for c in clients]
    for thread in threads:
        thread.start()
    cpu0 = time.process_time()
    began[0] = time.perf_counter()
    deadline[0] = began[0] + seconds
    start.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began[0]
    total = ClientStats()
    for c in clients:
        s = c.stats
        total.calls.extend(s.calls)
        for name in (
            "transport_errors", "readings_sent", "created", "duplicate", "rejected", "fresh_duplicates",
            "replays", "replay_mismatches", "resends", "resend_mismatches", "visit_resends",
            "visit_resend_mismatches",
        ):  # fmt: skip
            setattr(total, name, getattr(total, name) + getattr(s, name))
        total.acked.update(s.acked)
        total.visits.update(s.visits)
        total.list_items = max(total.list_items, s.list_items)
        for note in s.notes:
            total.note(note)
    return Traffic(elapsed, total, time.process_time() - cpu0)


def run_measured(port: int, url: str, world: World, args: argparse.Namespace) -> Traffic:
    """:func:`run_traffic`, with the CPU time of the server, of PostgreSQL and of the machine."""
    servers, backends = server_processes(port), database_backends(url)
    before, machine_before = cpu_ticks(servers + backends), machine_ticks()
    traffic = run_traffic(port, world, args.concurrency, args.seconds)
    backends = sorted(set(backends) | set(database_backends(url)))  # pool connections opened meanwhile
    after, machine_after = cpu_ticks(servers + backends), machine_ticks()
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    traffic.server_cpu = [
        (after[pid] - before[pid]) / tick for pid in servers if pid in before and pid in after
    ]
    if backends:
        traffic.database_cpu = sum(after[pid] - before.get(pid, 0) for pid in backends if pid in after) / tick
    if machine_after[1] > machine_before[1]:
        busy = machine_after[0] - machine_before[0]
        traffic.machine_busy = busy / (machine_after[1] - machine_before[1])
    return traffic


# --- verification ----------------------------------------------------------------------------------


@dataclass
class Verification:
    acked: int = 0
    stored: int = 0
    missing: int = 0
    duplicated: int = 0  # (source_system, source_reading_id) keys stored more than once
    wrong_id: int = 0  # acknowledged with an id other than the stored row's
    visits: int = 0
    visits_missing: int = 0
    visits_duplicated: int = 0
    visits_incomplete: int = 0  # stored without its three readings
    patients: int = 0
    tier_mismatches: int = 0
    stale: int = 0  # latest assessments whose facts differ from a fresh evaluation (tier or not)
    tiers: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    tier_notes: list[str] = field(default_factory=list)

    def lost_or_duplicated(self) -> int:
        return (
            self.missing + self.duplicated + self.wrong_id
            + self.visits_missing + self.visits_duplicated + self.visits_incomplete
        )  # fmt: skip


def verify(url: str, stats: ClientStats) -> Verification:
    from sqlalchemy import text
    from sqlmodel import Session, col, select

    from pathway import repository, service
    from pathway.db import make_engine
    from pathway.models import Patient
    from rules.evaluation import Evaluator
    from rules.registry import PackRegistry

    t0 = time.perf_counter()
    v = Verification(acked=len(stats.acked), visits=len(stats.visits))
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            rows = session.execute(
                text(
                    "SELECT source_system, source_reading_id, count(*), min(id) FROM reading "
                    "WHERE source_reading_id IS NOT NULL GROUP BY source_system, source_reading_id"
                )
            ).all()
            stored = {(str(r[0]), str(r[1])): (int(r[2]), int(r[3])) for r in rows}
            v.stored = sum(n for n, _ in stored.values())
            v.duplicated = sum(1 for n, _ in stored.values() if n > 1)
            for reading_key, reading_id in stats.acked.items():
                found = stored.get(reading_key)
                if found is None:
                    v.missing += 1
                    _note(v, f"acknowledged reading {reading_key} not stored")
                elif found[1] != reading_id:
                    v.wrong_id += 1
                    _note(v, f"reading {reading_key}: acknowledged as id {reading_id}, stored as {found[1]}")
            visit_rows = session.execute(
                text(
                    "SELECT e.source_encounter_id, count(DISTINCT e.id), min(e.id), count(r.id) "
                    "FROM encounter e LEFT JOIN reading r ON r.encounter_id = e.id "
                    "WHERE e.source_system = :system GROUP BY e.source_encounter_id"
                ),
                {"system": EHR_SOURCE},
            ).all()
            visits = {str(r[0]): (int(r[1]), int(r[2]), int(r[3])) for r in visit_rows}
            v.visits_duplicated = sum(1 for n, _, _ in visits.values() if n > 1)
            for source_id, encounter_id in stats.visits.items():
                found_visit = visits.get(source_id)
                if found_visit is None or found_visit[1] != encounter_id:
                    v.visits_missing += 1
                    _note(v, f"acknowledged visit {source_id} (id {encounter_id}) not stored as such")
                elif found_visit[2] != 3:
                    v.visits_incomplete += 1
                    _note(v, f"visit {source_id} stored with {found_visit[2]} readings, not 3")

            evaluator = Evaluator(PackRegistry.from_directory())
            for patient in session.exec(select(Patient).order_by(col(Patient.id))).all():
                assert patient.id is not None
                record = repository.latest_assessment(session, patient.id)
                if record is None:
                    continue
                v.patients += 1
                loaded = evaluator.registry.get(record.pack_id, record.pack_version)
                fresh = evaluator.assess(service.history_of(session, patient), record.as_of, loaded)
                v.tiers[record.tier] += 1
                facts, seen = fresh.to_json()["facts"], record.result.get("facts", {})
                if facts == seen and fresh.tier.value == record.tier:
                    continue
                v.stale += facts != seen
                v.tier_mismatches += fresh.tier.value != record.tier
                differ = sorted(k for k in facts.keys() | seen.keys() if facts.get(k) != seen.get(k))
                note = (
                    f"patient {patient.id}: assessment {record.id} (as of {record.as_of.isoformat()}), tier "
                    f"{record.tier}, fresh evaluation {fresh.tier.value}; it saw "
                    + ", ".join(f"{k}={seen.get(k)!r} (history: {facts.get(k)!r})" for k in differ[:4])
                )
                if fresh.tier.value != record.tier:
                    v.tier_notes.append(note)
                else:
                    _note(v, note)
    finally:
        engine.dispose()
    v.seconds = time.perf_counter() - t0
    return v


def _note(v: Verification, text: str) -> None:
    if len(v.notes) < 2 * NOTES:
        v.notes.append(text)


def server_log_problems(log_dir: Path) -> list[str]:
    """Lines of the server logs that speak of errors (uvicorn logs warnings and worse only)."""
    words = ("Traceback", "ERROR", "Error", "Exception", "CRITICAL", "WARNING")
    return [
        line.strip()
        for path in sorted(log_dir.glob("server-*.log"))
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
        if any(word in line for word in words)
    ]


# --- the report ------------------------------------------------------------------------------------


def latency_ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000 if ordered else math.nan


def print_endpoints(traffic: Traffic) -> None:
    by_endpoint: dict[str, list[tuple[int, float]]] = {}
    for endpoint, status, seconds, _ in traffic.stats.calls:
        by_endpoint.setdefault(endpoint, []).append((status, seconds))
    header = (
        f"{'endpoint':<26} {'requests':>9} {'req/s':>7} {'non-2xx':>8} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"
    )
    print()
    print(header)
    print("-" * len(header))
    for endpoint in sorted(by_endpoint):
        calls = by_endpoint[endpoint]
        latencies = [s for status, s in calls if status]
        bad = Counter(status for status, _ in calls if not 200 <= status < 300)
        bad_text = ",".join(f"{n}×{code or 'io'}" for code, n in sorted(bad.items())) or "0"
        print(
            f"{endpoint:<26} {len(calls):>9,} {len(calls) / traffic.elapsed:>7.1f} {bad_text:>8} "
            f"{latency_ms(latencies, 0.5):>8.1f} {latency_ms(latencies, 0.99):>8.1f} "
            f"{latency_ms(latencies, 1.0):>8.1f}"
        )
    everything = [s for _, status, s, _ in traffic.stats.calls if status]
    print("-" * len(header))
    print(
        f"{'all':<26} {len(traffic.stats.calls):>9,} {len(traffic.stats.calls) / traffic.elapsed:>7.1f} "
        f"{len(traffic.stats.calls) - traffic.ok():>8} {latency_ms(everything, 0.5):>8.1f} "
        f"{latency_ms(everything, 0.99):>8.1f} {latency_ms(everything, 1.0):>8.1f}"
    )


def _mark(ok: bool) -> str:
    return "pass" if ok else "FAIL"


def print_table(database: str, traffic: Traffic, v: Verification, world: World, log_lines: list[str]) -> None:
    s = traffic.stats
    rps = traffic.requests_per_s()
    statuses = traffic.statuses()
    other = {code: n for code, n in sorted(statuses.items()) if not 200 <= code < 300 and code < 500}
    waited = sum(key.pacer.waited for key in world.all_keys())
    machine_cpu = traffic.machine_busy * (os.cpu_count() or 1) * traffic.elapsed
    database_cpu = 0.0 if math.isnan(traffic.database_cpu) else traffic.database_cpu
    other_cpu = machine_cpu - sum(traffic.server_cpu) - traffic.cpu_seconds - database_cpu
    server_ms = sum(traffic.server_cpu) / len(s.calls) * 1000 if s.calls and traffic.server_cpu else math.nan
    rows = [
        ("database", "", database),
        (
            "run length s",
            f"≥ {TARGET_SECONDS:.0f}",
            f"{traffic.elapsed:.1f}  {_mark(traffic.elapsed >= TARGET_SECONDS)}",
        ),
        ("mixed requests/s (2xx)", f"≥ {TARGET_RPS:.0f}", f"{rps:,.1f}  {_mark(rps >= TARGET_RPS)}"),
        ("  in the slowest 10 s", "", f"{traffic.slowest_window():,.1f}"),
        ("  requests answered 2xx / sent", "", f"{traffic.ok():,} / {len(s.calls):,}"),
        ("  client CPU s (of wall s)", "", f"{traffic.cpu_seconds:.1f} ({traffic.elapsed:.1f})"),
        ("  server CPU s: per process", "", " + ".join(f"{c:.1f}" for c in traffic.server_cpu) or "—"),
        ("  server CPU ms per request", "", f"{server_ms:.1f}"),
        (f"  machine CPU busy ({os.cpu_count()} CPUs)", "", f"{traffic.machine_busy:.0%}"),
        ("  PostgreSQL CPU s (this database)", "", f"{traffic.database_cpu:.1f}"),
        ("  CPU s of all other processes", "", f"{other_cpu:.1f}"),
        ("  clients waiting for key pace s", "", f"{waited:.1f}"),
        ("5xx answers", "0", f"{traffic.server_errors()}  {_mark(traffic.server_errors() == 0)}"),
        ("transport errors", "0", f"{s.transport_errors}  {_mark(s.transport_errors == 0)}"),
        ("other non-2xx (info)", "", ", ".join(f"{n}× {c}" for c, n in other.items()) or "none"),
        ("server log error lines", "", f"{len(log_lines)}"),
        ("readings sent / acked / stored", "", f"{s.readings_sent:,} / {v.acked:,} / {v.stored:,}"),
        ("  items created / duplicate / rejected", "", f"{s.created:,} / {s.duplicate:,} / {s.rejected:,}"),
        ("  first-post items reported duplicate", "", f"{s.fresh_duplicates}"),
        (
            "lost / duplicated / misattributed readings",
            "0 / 0 / 0",
            f"{v.missing} / {v.duplicated} / {v.wrong_id}  "
            f"{_mark(v.missing + v.duplicated + v.wrong_id == 0)}",
        ),
        (
            "idempotent replays / changed",
            "0 changed",
            f"{s.replays} / {s.replay_mismatches}  {_mark(s.replay_mismatches == 0)}",
        ),
        (
            "re-sent batches / not all duplicate",
            "0",
            f"{s.resends} / {s.resend_mismatches}  {_mark(s.resend_mismatches == 0)}",
        ),
        (
            "visits acked / lost / dup / incomplete",
            "0 / 0 / 0",
            f"{v.visits:,} / {v.visits_missing} / {v.visits_duplicated} / {v.visits_incomplete}  "
            f"{_mark(v.visits_missing + v.visits_duplicated + v.visits_incomplete == 0)}",
        ),
        (
            "  visit re-sends / not the same visit",
            "0",
            f"{s.visit_resends} / {s.visit_resend_mismatches}  {_mark(s.visit_resend_mismatches == 0)}",
        ),
        (
            "tier mismatches (patients checked)",
            "0",
            f"{v.tier_mismatches} ({v.patients})  {_mark(v.tier_mismatches == 0)}",
        ),
        ("  latest assessments with other facts", "0", f"{v.stale}  {_mark(v.stale == 0)}"),
        ("  stored tiers", "", ", ".join(f"{t} {n}" for t, n in sorted(v.tiers.items()))),
        ("  largest team list today (tasks)", "", f"{s.list_items}"),
    ]
    width = (max(len(r[0]) for r in rows), max(len(r[1]) for r in rows), max(len(r[2]) for r in rows))
    rule = "-" * (sum(width) + 6)
    print()
    for n, (figure, target, value) in enumerate(rows):
        if n == 1 or figure in ("5xx answers", "readings sent / acked / stored"):
            print(rule)
        print(f"{figure:<{width[0]}}   {target:<{width[1]}}   {value:>{width[2]}}")
    print(rule)
    issue_ok = (
        database == "postgresql"
        and traffic.elapsed >= TARGET_SECONDS
        and rps >= TARGET_RPS
        and traffic.server_errors() == 0
        and v.lost_or_duplicated() == 0
        and v.tier_mismatches == 0
    )
    print(
        f"issue #5 target (≥ {TARGET_RPS:.0f} mixed req/s for {TARGET_SECONDS:.0f} s on PostgreSQL, no 5xx, "
        f"nothing lost or duplicated, no tier mismatch): {_mark(issue_ok)}"
    )
    emit(f"{database} mixed requests/s ({traffic.elapsed:.0f} s)", f"{rps:,.1f}", f"≥ {TARGET_RPS:.0f}",
         rps >= TARGET_RPS)  # fmt: skip
    errors, lost = traffic.server_errors(), v.lost_or_duplicated()
    emit(f"{database} 5xx / lost or duplicated", f"{errors} / {lost}", "0 / 0", errors == 0 and lost == 0)
    emit(f"{database} tier mismatches", str(v.tier_mismatches), "0", v.tier_mismatches == 0)


def problems(traffic: Traffic, v: Verification) -> list[str]:
    """Why the run is broken or incorrect (a missed throughput target is not among them)."""
    s = traffic.stats
    found: list[str] = []
    if traffic.ok() == 0:
        found.append("no request succeeded")
    if traffic.server_errors():
        found.append(f"{traffic.server_errors()} answers 5xx")
    if s.transport_errors:
        found.append(f"{s.transport_errors} transport errors")
    if v.missing or v.duplicated or v.wrong_id:
        found.append(f"readings: {v.missing} lost, {v.duplicated} duplicated, {v.wrong_id} misattributed")
    if v.visits_missing or v.visits_duplicated or v.visits_incomplete:
        found.append(
            f"visits: {v.visits_missing} lost, {v.visits_duplicated} duplicated, "
            f"{v.visits_incomplete} incomplete"
        )
    if s.replay_mismatches or s.resend_mismatches or s.visit_resend_mismatches:
        found.append(
            f"retries answered differently: {s.replay_mismatches} replays, {s.resend_mismatches} re-sent "
            f"batches, {s.visit_resend_mismatches} re-sent visits"
        )
    if v.tier_mismatches:
        found.append(f"{v.tier_mismatches} patients whose stored tier differs from a fresh evaluation")
    if v.stale:
        found.append(f"{v.stale} patients whose latest assessment missed part of their stored history")
    return found


def run(args: argparse.Namespace) -> int:
    workers = args.workers if args.database == "postgresql" else 1
    with (
        tempfile.TemporaryDirectory(prefix="bench-load-logs-") as logs,
        fresh_database(args.database, args.postgres_url) as url,
    ):
        with running_server(url, workers, Path(logs)) as port:
            print(
                f"[{args.database}] server up on port {port} ({redact(url)}), {workers} worker(s)", flush=True
            )
            t0 = time.perf_counter()
            world = provision(url, args, args.rate_limit)
            register(port, world, min(8, args.concurrency))
            print(
                f"[{args.database}] {len(world.patients)} patients in {len(world.teams)} teams, "
                f"{len(world.gateways)} gateway keys, set up in {time.perf_counter() - t0:.1f} s; "
                f"traffic for {args.seconds:g} s from {args.concurrency} threads",
                flush=True,
            )
            traffic = run_measured(port, url, world, args)
            print(
                f"[{args.database}] {len(traffic.stats.calls):,} requests in {traffic.elapsed:.1f} s "
                f"({traffic.requests_per_s():,.1f}/s answered 2xx)",
                flush=True,
            )
            log_lines = server_log_problems(Path(logs))
        verification = verify(url, traffic.stats)
    print(f"[{args.database}] checked the database in {verification.seconds:.1f} s")
    print_endpoints(traffic)
    print_table(args.database, traffic, verification, world, log_lines)
    for note in traffic.stats.notes:
        print(f"  e.g. {note}")
    for note in verification.tier_notes[: 2 * NOTES] + verification.notes:
        print(f"  check: {note}")
    for line in log_lines[:NOTES]:
        print(f"  server log: {line[:300]}")
    found = problems(traffic, verification)
    for problem in found:
        print(f"BROKEN {problem}")
    if not found:
        print("load test ok: no 5xx, every acknowledged reading stored once, tiers consistent")
    return 1 if found else 0


def main(argv: list[str] | None = None) -> int:
    assert __doc__ is not None
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="duration of the traffic (60)")
    parser.add_argument("--workers", type=int, default=2, help="server processes (2; SQLite runs one)")
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--patients", type=int, default=600, help="patients registered (600)")
    parser.add_argument("--teams", type=int, default=3, help="GP teams (3)")
    parser.add_argument("--gateways", type=int, default=6, help="gateway keys (6)")
    parser.add_argument("--concurrency", type=int, default=16, help="client threads (16)")
    parser.add_argument("--seed", type=int, default=5, help="seed of the synthetic data (5)")
    parser.add_argument(
        "--rate-limit", type=float, default=200.0,
        help="server limit per key and process, req/s (200, its default; 0: off); clients pace at 90%%",
    )  # fmt: skip
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="server for the temp database")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or min(args.workers, args.patients, args.teams, args.gateways, args.concurrency) < 1:
        parser.error(
            "--seconds, --workers, --patients, --teams, --gateways and --concurrency must be positive"
        )
    if args.rate_limit < 0:
        parser.error("--rate-limit must be 0 (off) or positive")
    # The server reads this at start (running_server only defaults it to 0 when it is unset).
    os.environ["PATHWAY_RATE_LIMIT_PER_SECOND"] = f"{args.rate_limit:g}"
    print(
        f"bench.load: {args.database}, {args.seconds:g} s, {args.workers} worker(s), {args.concurrency} "
        f"client threads, {args.patients} patients, {args.teams} teams, {args.gateways} gateways, seed "
        f"{args.seed}, rate limit {args.rate_limit:g}/s per key (clients pace at {PACE_SHARE:.0%}); "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    try:
        return run(args)
    except BenchmarkBroken as error:
        print(f"BROKEN {error}")
    except Exception as error:  # a broken benchmark is reported, never hidden
        traceback.print_exc()
        print(f"BROKEN {type(error).__name__}: {error}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
