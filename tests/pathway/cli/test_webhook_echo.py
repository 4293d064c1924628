"""``pathway webhook-echo``: a real receiver process that accepts a delivery signed with its secret
(printing the event) and refuses one that is not (401)."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from pathway.events.delivery import signature
from tests.faults.server import free_port

SECRET = "echo-secret-0123456789"


@pytest.fixture
def echo() -> Iterator[tuple[int, subprocess.Popen[str]]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "pathway", "webhook-echo", "--port", str(port), "--secret", SECRET],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stderr is not None
    assert "listening" in process.stderr.readline()
    yield port, process
    process.terminate()
    process.communicate(timeout=10)  # also closes its pipes


def _post(port: int, body: bytes, timestamp: str, signed: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    headers = {"X-Pathway-Timestamp": timestamp, "X-Pathway-Signature": signed, "X-Pathway-Event-Id": "7"}
    connection.request("POST", "/", body=body, headers=headers)
    status = connection.getresponse().status
    connection.close()
    return status


def test_a_signed_delivery_is_printed_and_a_forged_one_refused(
    echo: tuple[int, subprocess.Popen[str]],
) -> None:
    port, process = echo
    body = json.dumps({"id": 7, "kind": "red_tier_entered", "patient_id": 3, "tier": "red"}).encode()
    now = str(int(time.time()))
    assert _post(port, body, now, signature("another secret entirely", now, body)) == 401
    stale = str(int(time.time()) - 3600)
    assert _post(port, body, stale, signature(SECRET, stale, body)) == 401  # a replay an hour later
    assert _post(port, body, now, signature(SECRET, now, body)) == 204
    assert process.stdout is not None
    lines = [json.loads(process.stdout.readline()) for _ in range(3)]
    assert [line.get("refused") for line in lines[:2]] == ["bad signature", "bad signature"]
    assert lines[2] == {"verified": True, "event": json.loads(body)}
