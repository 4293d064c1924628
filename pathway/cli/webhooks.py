"""``pathway webhook-echo [--host H] [--port P] [--secret S]``: a tiny webhook receiver for trying
subscriptions out. It checks each delivery's signature (and timestamp) with the secret, answers
204 (401 when it does not verify) and prints the event as one JSON line."""

from __future__ import annotations

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pathway.events.delivery import verify


def _handler(secret: str | None) -> type[BaseHTTPRequestHandler]:
    class Echo(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            timestamp = self.headers.get("X-Pathway-Timestamp", "")
            signed = self.headers.get("X-Pathway-Signature", "")
            verified = secret is not None and verify(secret, timestamp, body, signed, time.time())
            if secret is not None and not verified:
                self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()
                print(
                    json.dumps(
                        {"refused": "bad signature", "event_id": self.headers.get("X-Pathway-Event-Id")}
                    )
                )
                sys.stdout.flush()
                return
            self.send_response(204)
            self.end_headers()
            try:
                event: Any = json.loads(body)
            except ValueError:
                event = {"unreadable": body[:200].decode(errors="replace")}
            print(json.dumps({"verified": verified, "event": event}, ensure_ascii=False))
            sys.stdout.flush()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per event on stdout is the output

    return Echo


def _webhook_echo(host: str, port: int, secret: str | None) -> int:
    server = ThreadingHTTPServer((host, port), _handler(secret))
    address = f"http://{host}:{server.server_address[1]}/"
    check = "checking signatures" if secret else "NOT checking signatures (no --secret)"
    print(f"webhook-echo listening on {address} ({check})", file=sys.stderr)
    sys.stderr.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
