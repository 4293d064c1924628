"""`pathway serve` migrates the embedded database and answers over HTTP."""

from __future__ import annotations

import json
import os
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
