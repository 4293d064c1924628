"""Slow clients are timed out: uvicorn's httptools protocol, with deadlines on a request's headers and body.

uvicorn waits for a request's bytes without limit, so a client that trickles a header byte every
few seconds (Slowloris), or sends its headers and never finishes the body, holds a connection, and
its file descriptor, forever. :class:`SlowClientProtocol` (``pathway serve`` runs it, ``http=``)
gives each request two deadlines:

- its request line and headers must have arrived ``PATHWAY_HEADER_TIMEOUT_SECONDS`` (10) after
  the connection opened, or after the previous response on it ended (keep-alive);
- its body must have arrived ``PATHWAY_BODY_TIMEOUT_SECONDS`` (30) after its headers.

Past either, the client is answered ``408`` with the product's error body (``request-timeout``)
and the connection closed; if the application has already begun its answer (it answered before
reading the body), the connection is only closed. A connection on which nothing of a request has
arrived (blank lines before a request are skipped, as the parser skips them) is closed without an
answer, as uvicorn closes an idle keep-alive connection (``timeout_keep_alive``, 5 s, kept): a 408
there would race a request the client sends just then, and be read as its answer. A body the server
itself stopped reading (flow control, while the application has not taken what arrived) is not the
client's delay: its deadline is extended.

It is uvicorn's httptools protocol (what ``http="auto"`` picks), not its h11 one, which costs some
50 µs more CPU a request. What is awaited follows the parser's callbacks (a message begun, its
headers complete, it complete) and the ends of responses; each moment is one ``loop.time()``. The
deadlines share one ``loop.call_at`` timer per connection, re-armed only when it fires before what
is awaited is due (or when a deadline comes earlier than it), not set and cancelled per request.
The application is not involved until a body times out, when its ``receive()`` gets
``http.disconnect``, as if the client had gone, and whatever it answers is dropped. The settings
are read from the environment once per process (the worker processes of ``--workers N`` too);
``pathway serve`` reads them first, so a bad value is one line there.
"""

from __future__ import annotations

import asyncio
import functools
import json
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from pathway.clinical.errors import PathwayError
from pathway.settings import read_settings

# For ``uvicorn.run(..., http=PROTOCOL)`` in worker processes, which import it by name.
PROTOCOL = "api.slow_clients:SlowClientProtocol"


class ClientTimeouts(BaseSettings):
    """How long a client may take to send a request (``PATHWAY_HEADER_TIMEOUT_SECONDS``,
    ``PATHWAY_BODY_TIMEOUT_SECONDS``)."""

    model_config = SettingsConfigDict(env_prefix="PATHWAY_", frozen=True, extra="ignore")

    header_timeout_seconds: float = Field(default=10, gt=0, le=300)
    body_timeout_seconds: float = Field(default=30, gt=0, le=3600)


@functools.cache
def client_timeouts() -> ClientTimeouts:
    """This process's timeouts, read from the environment the first time a connection needs them."""
    return read_settings(ClientTimeouts)


class RequestTimeout(PathwayError):
    code = "request-timeout"
    status = 408


# What of the request being read has arrived (the parser's callbacks move it).
_NOTHING = 0  # nothing of a request since the previous one (or since the connection opened)
_HEADERS = 1  # its first bytes, not all its headers
_BODY = 2  # its headers, not all its body


class SlowClientProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, which times out a request whose headers or body arrive too slowly."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        timeouts = client_timeouts()
        self.header_timeout = timeouts.header_timeout_seconds
        self.body_timeout = timeouts.body_timeout_seconds
        self.reading = _NOTHING
        self.header_since = 0.0  # when the wait for the next request's headers began
        self.body_since = 0.0  # when the wait for the running request's body began
        self.timer: asyncio.TimerHandle | None = None
        self.timer_when = 0.0

    # The moments what is awaited can change: opened, a request begun, its headers, its end,
    # a response ended, closed.
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.header_since = now = self.loop.time()
        self._due_by(now + self.header_timeout)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.reading = _HEADERS

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self.reading = _BODY
        if not self.pipeline:  # it runs now (a pipelined one waits for the answers before it)
            self.body_since = now = self.loop.time()
            self._due_by(now + self.body_timeout)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.reading = _NOTHING

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)
        super().on_response_complete()  # may start the next (pipelined) request
        if self.transport.is_closing():
            return
        now = self.loop.time()
        self.header_since = now
        if pipelined and not self.pipeline and self.reading == _BODY:  # the one started is still arriving
            self.body_since = now
        self._due_by(now + self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        super().connection_lost(exc)

    def _ours(self) -> bool:
        """The connection is open and still ours (not closing, not handed to another protocol)."""
        return not self.transport.is_closing() and self.transport.get_protocol() is self

    def _due_by(self, when: float) -> None:
        """The timer fires by ``when`` (it may fire earlier: it then looks again)."""
        if self.timer is None or self.timer_when > when:
            if self.timer is not None:
                self.timer.cancel()
            self.timer = self.loop.call_at(when, self._timer_fired)
            self.timer_when = when

    def _awaited(self) -> tuple[str, float] | None:
        """What the connection is waiting for from the client, and by when: the running request's
        body, or (no request being answered) the next request's headers; else nothing."""
        if self.reading == _BODY:
            if self.pipeline:  # its body waits for the answers before it (reading is paused)
                return None
            return "body", self.body_since + self.body_timeout
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            return "headers", self.header_since + self.header_timeout
        return None  # a request is being answered

    def _timer_fired(self) -> None:
        self.timer = None
        if not self._ours():
            return
        awaited = self._awaited()
        if awaited is None:  # armed again when something is awaited
            return
        what, due = awaited
        if due > self.timer_when:  # not yet: what was due by then has arrived
            self._due_by(due)
        elif what == "headers":
            self._headers_timed_out()
        else:
            self._body_timed_out()

    def _headers_timed_out(self) -> None:
        if self.reading == _NOTHING:  # nothing of a request (blank lines are skipped): just close,
            self.transport.close()  # as an idle keep-alive connection is closed
            return
        self._refuse(f"the request's headers did not arrive within {self.header_timeout:g} s")

    def _body_timed_out(self) -> None:
        if self.flow.read_paused:  # we stopped reading (the application has not taken the body yet)
            self.body_since = now = self.loop.time()
            self._due_by(now + self.body_timeout)
            return
        cycle = self.cycle
        if cycle is None or cycle.response_started:  # the application's answer has begun: only close
            self.transport.close()
            return
        cycle.disconnected = True  # its receive() gets http.disconnect; what it sends is dropped
        self._refuse(f"the request's body did not arrive within {self.body_timeout:g} s")
        cycle.message_event.set()

    def _refuse(self, message: str) -> None:
        """Answer 408 ``request-timeout`` (nothing of a response was sent) and close the connection."""
        body = json.dumps(RequestTimeout(message).as_dict()).encode()
        content = [STATUS_LINE[408]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: application/json\r\n",
                b"content-length: " + str(len(body)).encode() + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()
