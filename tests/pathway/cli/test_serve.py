"""`pathway serve` migrates the embedded database and answers over HTTP."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from pathway.cli import main


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_serve_applies_migrations_and_answers(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "PATHWAY_DATABASE_URL": f"sqlite:///{tmp_path / 'pathway.db'}"}
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "pathway", "serve", "--port", str(port)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/patients/1", timeout=2)
            except urllib.error.HTTPError as error:
                status, body = error.code, json.loads(error.read())
                break
            except urllib.error.URLError:
                assert server.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        assert status == 401  # every route needs an API key
        assert body["code"] == "unauthenticated"
        assert (tmp_path / "pathway.db").exists()
        assert "admin API key (shown once): pw_" in log.read_text()
        assert "task scheduler running in this process" in log.read_text()
        # The access log, on by default: one line a request, on stdout (written just after the
        # response is sent, so a loaded machine may show it a moment later).
        line = r"GET /v1/patients/1 401 \d+\.\dms key=-"
        deadline = time.monotonic() + 5
        while not re.search(line, log.read_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert re.search(line, log.read_text()), log.read_text()
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_serve_refuses_several_workers_on_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATHWAY_DATABASE_URL", f"sqlite:///{tmp_path / 'pathway.db'}")
    assert main(["serve", "--workers", "2"]) == 2
    assert "--workers" in capsys.readouterr().err
    assert not (tmp_path / "pathway.db").exists()  # refused before touching the store


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("PATHWAY_KEY_CACHE_SECONDS", "-1", "bad-setting (PATHWAY_KEY_CACHE_SECONDS)"),
        ("PATHWAY_CLINIC_TIMEZONE", "Mars/Olympus", "bad-setting (PATHWAY_CLINIC_TIMEZONE)"),
        ("PATHWAY_DATABASE_URL", "mysql://db/x", "bad-setting (PATHWAY_DATABASE_URL)"),
        ("PATHWAY_WEB_SESSION_SECRET", "changeme", "bad-setting (PATHWAY_WEB_SESSION_SECRET)"),
        ("PATHWAY_PACK_ID", "sangao-atlantis", "bad-setting (PATHWAY_PACK_ID)"),
        ("PATHWAY_DATABASE_URL", "postgresql://pw:hunter2@127.0.0.1:1/x", "connection refused"),
        ("PATHWAY_DATABASE_URL", "sqlite:////no/such/folder/pathway.db", "no such file or directory"),
    ],
)
def test_a_start_up_error_is_one_clear_line_and_a_non_zero_exit(
    variable: str, value: str, named: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(variable, value)
    assert main(["serve", "--port", str(_free_port())]) == 2
    captured = capsys.readouterr()
    [line] = captured.err.splitlines()
    assert line.startswith("error: ")
    assert named.lower() in line.lower()
    assert "hunter2" not in line + captured.out  # a password is never printed
    assert "Traceback" not in captured.err


def test_a_port_in_use_is_one_line_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATHWAY_DATABASE_URL", f"sqlite:///{tmp_path / 'pathway.db'}")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line == f"error: cannot-listen (--port): cannot listen on 127.0.0.1:{port}: Address already in use"
    assert not (tmp_path / "pathway.db").exists()  # refused before touching the store


def test_the_command_exits_non_zero_with_no_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "PATHWAY_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nothing"}
    done = subprocess.run(
        [sys.executable, "-m", "pathway", "scheduler", "--once"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stderr.startswith(
        "error: database-unreachable (PATHWAY_DATABASE_URL): cannot open the database"
    )
    assert len(done.stderr.splitlines()) == 1
