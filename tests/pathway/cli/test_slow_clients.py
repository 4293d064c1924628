"""`pathway serve` times out slow clients (Slowloris): headers and bodies have deadlines (#21 9d).

The real server runs in a subprocess, on SQLite, with both timeouts at 1 s; the clients are raw
sockets, so a request can arrive a byte at a time.
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.slow_clients import SlowClientProtocol
from pathway import cli
from pathway.cli import serve
from tests.faults.server import Server, admin_key, free_port

TIMEOUT = 1.0  # both PATHWAY_HEADER_TIMEOUT_SECONDS and PATHWAY_BODY_TIMEOUT_SECONDS
SLACK = 1.0  # how much later than its deadline a connection may be closed, on a busy machine


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("slow-clients")
    url = f"sqlite:///{folder / 'pathway.db'}"
    running = Server(url, admin_key(url), folder / "serve.log")
    with pytest.MonkeyPatch.context() as env:  # Server.start passes os.environ on
        env.setenv("PATHWAY_HEADER_TIMEOUT_SECONDS", str(TIMEOUT))
        env.setenv("PATHWAY_BODY_TIMEOUT_SECONDS", str(TIMEOUT))
        running.start()
    try:
        yield running
    finally:
        running.stop()
    log = running.log.read_text()
    assert "Traceback" not in log, log  # a timed-out request is no error in the application


def _connect(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT + SLACK + 2)


def _read_to_close(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a socket timeout fails the test)."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def _response(raw: bytes) -> tuple[int, dict[str, str], Any]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), headers, json.loads(body)


def _assert_request_timeout(raw: bytes) -> None:
    status, headers, body = _response(raw)
    assert status == 408, raw
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    assert body["code"] == "request-timeout"
    assert set(body) == {"code", "message"}  # the product's error shape (no field to name)


def test_trickled_headers_get_408_and_a_close_while_other_clients_are_answered(server: Server) -> None:
    rest = b"TP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100  # never finished
    with _connect(server) as slow:
        opened = time.monotonic()
        slow.sendall(b"GET /v1/rule-packs HT")
        answered_meanwhile = False
        received = b""
        for byte in rest:  # a byte every 0.3 s: each arrives well within the timeout of the last
            readable, _, _ = select.select([slow], [], [], 0.3)
            if readable:
                received = _read_to_close(slow)
                break
            slow.sendall(bytes([byte]))
            if not answered_meanwhile:
                assert server.request("GET", "/v1/rule-packs", timeout=5)[0] == 200
                answered_meanwhile = True
            assert time.monotonic() - opened < TIMEOUT + SLACK, "the trickling client is still connected"
        closed = time.monotonic() - opened
    assert answered_meanwhile
    _assert_request_timeout(received)
    assert TIMEOUT - 0.1 < closed < TIMEOUT + SLACK
    assert server.request("GET", "/v1/rule-packs")[0] == 200  # the server is none the worse


def test_a_body_that_stops_short_gets_408_and_a_close(server: Server) -> None:
    head = (
        "POST /v1/patients HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {server.key}\r\nContent-Length: 100\r\n\r\n"
    )
    with _connect(server) as slow:
        slow.sendall(head.encode() + b'{"name": "')  # 10 of the 100 bytes
        sent = time.monotonic()
        received = _read_to_close(slow)
        closed = time.monotonic() - sent
    _assert_request_timeout(received)
    assert "body" in _response(received)[2]["message"]
    assert TIMEOUT - 0.1 < closed < TIMEOUT + SLACK
    assert server.request("GET", "/v1/rule-packs")[0] == 200


def test_a_connection_that_sends_nothing_is_closed_without_an_answer(server: Server) -> None:
    with _connect(server) as idle:
        opened = time.monotonic()
        received = _read_to_close(idle)
        closed = time.monotonic() - opened
    assert received == b""  # no request to answer (a 408 could cross one the client sends just then)
    assert TIMEOUT - 0.1 < closed < TIMEOUT + SLACK


def test_a_keep_alive_client_pausing_below_the_timeout_is_answered_every_time(server: Server) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        statuses = []
        for pause in (0, TIMEOUT / 2):  # each answer starts a new header deadline: pauses do not add up
            time.sleep(pause)
            connection.request("GET", "/v1/rule-packs", headers={"Authorization": f"Bearer {server.key}"})
            response = connection.getresponse()
            response.read()
            statuses.append(response.status)
            sock = connection.sock
        assert statuses == [200, 200]
        assert connection.sock is sock is not None  # one connection throughout
        # A third request, its headers in two pieces, the last within the deadline: answered too.
        assert sock is not None
        sock.sendall(b"GET /v1/rule-packs HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        time.sleep(TIMEOUT / 2)
        sock.sendall(f"Authorization: Bearer {server.key}\r\n\r\n".encode())
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PATHWAY_HEADER_TIMEOUT_SECONDS", "0"),
        ("PATHWAY_HEADER_TIMEOUT_SECONDS", "abc"),
        ("PATHWAY_HEADER_TIMEOUT_SECONDS", "301"),
        ("PATHWAY_BODY_TIMEOUT_SECONDS", "-1"),
        ("PATHWAY_BODY_TIMEOUT_SECONDS", "3601"),
    ],
)
def test_a_bad_timeout_is_one_line_naming_it_before_anything_starts(
    variable: str,
    value: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PATHWAY_DATABASE_URL", f"sqlite:///{tmp_path / 'pathway.db'}")
    monkeypatch.setenv(variable, value)
    monkeypatch.setattr("uvicorn.run", lambda *args, **kwargs: None)  # never serve, whatever happens
    assert cli.main(["serve", "--port", str(free_port()), "--no-scheduler"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: bad-setting ({variable}): ")
    assert not (tmp_path / "pathway.db").exists()  # refused before touching the store


def test_every_server_process_runs_the_protocol(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """One worker gets the class (uvicorn's httptools protocol); several (PostgreSQL) get its import name,
    as worker processes import it."""
    from uvicorn.importer import import_from_string
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    assert issubclass(SlowClientProtocol, HttpToolsProtocol)  # httptools, as http="auto" runs: not h11

    runs: list[dict[str, Any]] = []
    monkeypatch.setattr("uvicorn.run", lambda *args, **kwargs: runs.append(kwargs))
    monkeypatch.setenv("PATHWAY_DATABASE_URL", f"sqlite:///{tmp_path / 'pathway.db'}")
    assert cli.main(["serve", "--port", str(free_port()), "--no-scheduler"]) == 0
    monkeypatch.setenv("PATHWAY_DATABASE_URL", "postgresql://pathway@127.0.0.1:1/none")
    monkeypatch.setattr(serve, "_migrate", lambda url: None)
    monkeypatch.setattr(serve, "_bootstrap_admin_key", lambda settings: None)
    assert cli.main(["serve", "--port", str(free_port()), "--workers", "2", "--no-scheduler"]) == 0
    one, several = runs
    assert one["http"] is SlowClientProtocol
    assert several["workers"] == 2
    assert import_from_string(several["http"]) is SlowClientProtocol
    capsys.readouterr()
