"""`make run` and `make demo` serve where HOST and PORT say (`PORT=8080 make run`)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def _planned(target: str, **env: str) -> list[str]:
    """The commands ``make -n target`` would run, with ``env`` in the environment."""
    clean = {k: v for k, v in os.environ.items() if k not in ("HOST", "PORT", "MAKEFLAGS", "MAKELEVEL")}
    done = subprocess.run(
        ["make", "-n", "-s", target],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.splitlines()


def _serve(lines: list[str]) -> str:
    return next(line for line in lines if "pathway serve" in line)


def test_make_run_serves_on_the_port_and_host_of_the_environment() -> None:
    lines = _planned("run", PORT="8080", HOST="0.0.0.0")
    assert _serve(lines).endswith("pathway serve --host 0.0.0.0 --port 8080")
    assert any("pathway demo --if-empty --base-url http://0.0.0.0:8080" in line for line in lines)


def test_make_run_serves_on_127_0_0_1_port_8000_by_default() -> None:
    assert _serve(_planned("run")).endswith("pathway serve --host 127.0.0.1 --port 8000")
    assert _serve(_planned("demo", PORT="9000")).endswith("pathway serve --host 127.0.0.1 --port 9000")


def test_the_demo_prints_the_urls_of_the_server_it_was_told_of(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pathway.cli import main

    monkeypatch.setenv("PATHWAY_DATABASE_URL", f"sqlite:///{tmp_path / 'pathway.db'}")
    main(["demo", "--patients", "1", "--as-of", "2026-03-03T09:30:00+08:00", "--base-url", "http://h:8080/"])
    out = capsys.readouterr().out
    assert "interactive docs: http://h:8080/docs" in out
    assert "127.0.0.1:8000" not in out
