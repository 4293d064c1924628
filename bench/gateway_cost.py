"""What one gateway batch costs the product, in CPU and SQL statements (a benchmark, not a test).

    python -m bench.gateway_cost [--database sqlite|postgresql] [--patients 50] [--batches 400]
                                 [--batch 20] [--postgres-url URL]

Wall-clock figures (``bench.ingest``, ``bench.load``) move with whatever else the machine runs;
this one is meant to compare two trees of the product on a busy machine (run it from each tree,
e.g. ``PYTHONPATH=/path/to/other/tree python -m bench.gateway_cost``). In one process, through the
real app (``api.main.create_app``) and FastAPI's ``TestClient``: ``--patients`` hypertensive and
diabetic patients, each with two current prescriptions (an ACEI and a CCB) when the tree has the
prescriptions route, linked to one gateway key; then ``--batches`` gateway batches of ``--batch``
wearable BP readings, round-robin over the patients, each with an ``Idempotency-Key``. Measured
over the batches only: this process's CPU seconds (``time.process_time``: client, app and engine;
PostgreSQL's own CPU is not in it, so the SQL statements each batch sends are counted too), per
batch. Every batch must be answered 201 with every item ``created`` (else exit 1).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, event, text
from sqlmodel import Session, select

from api.main import create_app
from pathway.access import permissions
from pathway.access.permissions import Role
from pathway.clinical.clock import CLINIC_TZ
from pathway.settings import Settings
from pathway.store.db import migrate
from pathway.store.work_tables import ApiKey

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


def _key(app: Any, role: Role, at: datetime) -> tuple[int, str]:
    with Session(app.state.engine) as session:
        key, plaintext = permissions.create_key(session, role, f"bench {role.value}", at)
        session.commit()
        key_id = session.exec(select(ApiKey.id).where(ApiKey.prefix == plaintext.split("_")[1])).one()
    assert key_id is not None
    return key_id, plaintext


def _prescriptions(today: datetime) -> list[dict[str, Any]]:
    started = (today - timedelta(days=20)).date().isoformat()
    return [
        {"source_prescription_id": "rx-acei", "atc": "C09AA02", "drug": "马来酸依那普利片",
         "dose": "10 mg qd", "started_on": started, "supply_days": 90},
        {"source_prescription_id": "rx-ccb", "atc": "C08CA01", "drug": "苯磺酸氨氯地平片",
         "dose": "5 mg qd", "started_on": started, "supply_days": 90},
    ]  # fmt: skip


def _reading(n: int, at: datetime) -> dict[str, Any]:
    return {
        "kind": "bp",
        "systolic": 112 + (7 * n) % 56,
        "diastolic": 68 + (5 * n) % 30,
        "unit": "mmHg",
        "source": "wearable",
        "measured_at": (at - timedelta(hours=1, seconds=n)).isoformat(),
        "device_id": "bench-cuff",
        "source_reading_id": f"r{n}",
    }


def run(url: str, patients: int, batches: int, batch: int) -> tuple[float, float, bool]:
    """(CPU ms per batch, statements per batch, prescriptions recorded) over the timed batches."""
    now = datetime.now(CLINIC_TZ).replace(microsecond=0)
    migrate(url)
    app = create_app(Settings(database_url=url, rate_limit_per_second=0), clock=Clock(now))
    with TestClient(app) as client:
        gateway_id, gateway = _key(app, Role.GATEWAY, now)
        _, admin = _key(app, Role.ADMIN, now)
        as_admin = {"Authorization": f"Bearer {admin}"}
        ids: list[int] = []
        with_prescriptions = True
        for i in range(patients):
            body = {
                "source_system": "bench",
                "external_id": f"p{i}",
                "sex": "male" if i % 2 else "female",
                "birth_date": f"{1945 + i % 30}-03-15",
                "conditions": ["hypertension", "diabetes"],
            }
            answer = client.post("/v1/patients", json=body, headers=as_admin)
            assert answer.status_code == 201, answer.text
            patient_id = int(answer.json()["id"])
            ids.append(patient_id)
            linked = client.post(f"/v1/patients/{patient_id}/gateways", json={"api_key_id": gateway_id},
                                 headers=as_admin)  # fmt: skip
            assert linked.status_code == 204, linked.text
            if with_prescriptions:
                rx = client.post(f"/v1/patients/{patient_id}/prescriptions", json=_prescriptions(now),
                                 headers=as_admin)  # fmt: skip
                with_prescriptions = rx.status_code != 404  # a tree from before §7
                assert rx.status_code in (201, 404), rx.text
        statements = 0

        def count(*_: Any) -> None:
            nonlocal statements
            statements += 1

        event.listen(app.state.engine, "before_cursor_execute", count)
        as_gateway = {"Authorization": f"Bearer {gateway}"}
        started = time.process_time()
        for b in range(batches):
            readings = [_reading(b * batch + k, now) for k in range(batch)]
            headers = {**as_gateway, "Idempotency-Key": f"batch-{b}"}
            answer = client.post(f"/v1/patients/{ids[b % patients]}/readings", json=readings, headers=headers)
            if answer.status_code != 201 or answer.json()["created"] != batch:
                raise SystemExit(f"batch {b}: {answer.status_code} {answer.text[:300]}")
        cpu = time.process_time() - started
    app.state.engine.dispose()
    return 1000 * cpu / batches, statements / batches, with_prescriptions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway_cost", description=__doc__.split("\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--patients", type=int, default=50)
    parser.add_argument("--batches", type=int, default=400)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--postgres-url", default=os.environ.get("PATHWAY_TEST_POSTGRES_URL", POSTGRES_URL))
    args = parser.parse_args(argv)
    if args.database == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            cpu, per_batch, rx = run(
                f"sqlite:///{directory}/bench.db", args.patients, args.batches, args.batch
            )
    else:
        name = f"bench_{uuid.uuid4().hex[:12]}"
        server = create_engine(args.postgres_url, isolation_level="AUTOCOMMIT")
        with server.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = args.postgres_url.rsplit("/", 1)[0] + f"/{name}"
        try:
            cpu, per_batch, rx = run(url, args.patients, args.batches, args.batch)
        finally:
            with server.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            server.dispose()
    what = f"{args.batches} gateway batches of {args.batch} readings over {args.patients} patients"
    print(f"{args.database}: {what} ({'with' if rx else 'without'} prescriptions)")
    print(f"FIGURE\t{args.database} CPU ms per gateway batch\t{cpu:.2f}\t\tinfo")
    print(f"FIGURE\t{args.database} SQL statements per gateway batch\t{per_batch:.1f}\t\tinfo")
    return 0


if __name__ == "__main__":
    sys.exit(main())
