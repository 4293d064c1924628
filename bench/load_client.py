"""The mixed-load benchmark's clients (bench/load.py): one keep-alive connection per thread,
the traffic mix, and the CPU time of the server, PostgreSQL and the machine."""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import random
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.ingest import (
    HOST,
    OFFSET_TZ,
    REQUEST_TIMEOUT,
    BenchmarkBroken,
)
from bench.load_world import (
    EHR_SOURCE,
    ENCOUNTER,
    ENCOUNTER_RESEND,
    GATEWAY,
    MAX_TRANSPORT_ERRORS,
    NOTES,
    READ,
    REPLAY,
    RESEND,
    WINDOW_SECONDS,
    Key,
    PatientRef,
    World,
    encounter_body,
    patient_body,
    reading_body,
)

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

    from pathway.store.db import make_engine

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
    def __init__(
        self, k: int, port: int, world: World, began: list[float], deadline: list[float], run: int = 0
    ) -> None:
        self.k, self.port, self.world = k, port, world
        # Run 0 is bench.load's; later runs on the same world (bench.ratio) draw other traffic
        # and use other idempotency keys, so a repeat never replays an earlier run's key by chance.
        self.rng = random.Random(world.seed * 1_000 + k + 7_919 * run)
        self._prefix = f"r{run}-" if run else ""
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
        idempotency_key = f"{self._prefix}t{self.k}-b{self._batches}"
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
            **{"Idempotency-Key": f"{self._prefix}t{self.k}-b{self._batches}"},
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


def merge(total: ClientStats, s: ClientStats) -> None:
    """Add one client's (or one run's) figures to ``total``."""
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


def run_traffic(port: int, world: World, concurrency: int, seconds: float, run: int = 0) -> Traffic:
    began, deadline = [0.0], [math.inf]
    clients = [Client(k, port, world, began, deadline, run) for k in range(concurrency)]
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
        merge(total, c.stats)
    return Traffic(elapsed, total, time.process_time() - cpu0)


def run_measured(port: int, url: str, world: World, args: argparse.Namespace, run: int = 0) -> Traffic:
    """:func:`run_traffic`, with the CPU time of the server, of PostgreSQL and of the machine."""
    servers, backends = server_processes(port), database_backends(url)
    before, machine_before = cpu_ticks(servers + backends), machine_ticks()
    traffic = run_traffic(port, world, args.concurrency, args.seconds, run)
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
