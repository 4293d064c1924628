"""A real `pathway serve` in a subprocess, and a throwaway PostgreSQL cluster, for the fault tests."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlmodel import Session

from pathway.access import permissions
from pathway.access.permissions import Role
from pathway.store.db import make_engine, migrate
from tests.builders import AS_OF

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def admin_key(url: str) -> str:
    migrate(url)
    engine = make_engine(url)
    with Session(engine) as session:
        _key, plaintext = permissions.create_key(session, Role.ADMIN, "faults", AS_OF)
        session.commit()
    engine.dispose()
    return plaintext


class Server:
    """``pathway serve`` on ``url``: start, kill -9, start again; JSON requests with a key."""

    def __init__(self, url: str, key: str, log: Path) -> None:
        self.url, self.key, self.log = url, key, log
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "PATHWAY_DATABASE_URL": self.url, "PATHWAY_RATE_LIMIT_PER_SECOND": "0"}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pathway", "serve", "--port", str(self.port)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                if self.request("GET", "/v1/rule-packs", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            assert self.process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> tuple[int, dict[str, str], Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.key}",
                "Content-Type": "application/json",
                **(headers or {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return (
                    response.status,
                    _lower(response.headers.items()),
                    json.loads(response.read() or b"null"),
                )
        except urllib.error.HTTPError as error:
            return error.code, _lower(error.headers.items()), json.loads(error.read() or b"null")


def _lower(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers}


@contextmanager
def throwaway_postgres() -> Iterator[tuple[str, Cluster]]:
    """A PostgreSQL cluster of our own (initdb in a temporary directory, its own port on 127.0.0.1).

    The directory is made outside pytest's (root-only) temporary tree, so the postgres user,
    which initdb and the server run as when the tests run as root, can use it.
    """
    root = Path(tempfile.mkdtemp(prefix="pathway-pg-"))
    cluster = Cluster(root / "data", free_port())
    try:
        cluster.create()
        cluster.start()
        yield f"postgresql://postgres@127.0.0.1:{cluster.port}/postgres", cluster
    finally:
        cluster.stop(mode="immediate")
        shutil.rmtree(root, ignore_errors=True)


class Cluster:
    def __init__(self, data: Path, port: int) -> None:
        self.data, self.port = data, port
        self._as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as_postgres, *args], check=True, capture_output=True, timeout=60)

    def create(self) -> None:
        self.data.mkdir(mode=0o700)
        if self._as_postgres:
            shutil.chown(self.data.parent, "postgres")
            shutil.chown(self.data, "postgres")
            self.data.parent.chmod(0o755)
        self._run(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"
        )

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data}"
        log = str(self.data.parent / "postgres.log")  # the server's output, not our pipes (pg_ctl returns)
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", log, "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(
            [*self._as_postgres, str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"],
            capture_output=True,
            timeout=60,
        )
