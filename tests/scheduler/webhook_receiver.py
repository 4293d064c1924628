"""A real HTTP receiver for the webhook tests: a threaded ``http.server`` on a free port that plays a
script of answers (fail with 500, hang past the sender's timeout, answer 200) and keeps what it
accepted, checking every signature."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pathway.events import delivery

FAIL, HANG, OK = "fail", "hang", "ok"


@dataclass
class Receiver:
    secret: str
    now: Callable[[], float]  # the sender's clock (Unix seconds), for the timestamp check
    script: list[str] = field(default_factory=list)  # answers to the next requests; then OK
    hang_seconds: float = 1.5
    delay_seconds: float = 0.0  # before every answer (a slow receiver)
    accepted: list[dict[str, Any]] = field(default_factory=list)  # events answered 200, in order
    requests: int = 0
    bad_signatures: int = 0
    in_flight: int = 0
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/pathway"

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers["Content-Length"]))
        timestamp = handler.headers["X-Pathway-Timestamp"]
        signed = handler.headers["X-Pathway-Signature"]
        with self.lock:
            self.requests += 1
            mode = self.script.pop(0) if self.script else OK
            self.in_flight += 1
            if not delivery.verify(self.secret, timestamp, body, signed, self.now()):
                self.bad_signatures += 1
        try:
            if mode == HANG:
                time.sleep(self.hang_seconds)
            time.sleep(self.delay_seconds)
            status = 500 if mode == FAIL else 200
            handler.send_response(status)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            if status == 200 and mode == OK:
                event = json.loads(body)
                assert handler.headers["X-Pathway-Event-Id"] == str(event["id"])
                with self.lock:
                    self.accepted.append(event)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the sender gave up (timed out, or was killed)
        finally:
            with self.lock:
                self.in_flight -= 1

    def accepted_ids(self) -> list[int]:
        with self.lock:
            return [int(e["id"]) for e in self.accepted]


@contextmanager
def receiving(receiver: Receiver) -> Iterator[Receiver]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            receiver.handle(self)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
