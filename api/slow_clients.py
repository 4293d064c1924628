"""Slow clients are timed out: uvicorn's h11 protocol, with deadlines on a request's headers and body.

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
arrived is closed without an answer, as uvicorn closes an idle keep-alive connection
(``timeout_keep_alive``, 5 s, kept): a 408 there would race a request the client sends just then,
and be read as its answer. A body the server itself stopped reading (flow control, while the
application has not taken what arrived) is not the client's delay: its deadline is extended.

The deadlines are ``loop.call_later`` timers, one of each at most per connection, set and cancelled
as the connection's h11 state moves (after every read and every response); the application is not
involved until a body times out, when its ``receive()`` gets ``http.disconnect``, as if the client
had gone, and whatever it answers is dropped. The settings are read from the environment once per
process (the worker processes of ``--workers N`` too); ``pathway serve`` reads them first, so a bad
value is one line there.
"""

from __future__ import annotations

import asyncio
import functools
import json
from typing import Any

import h11
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import STATUS_PHRASES, H11Protocol
from uvicorn.server import ServerState

from pathway.errors import PathwayError
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


class SlowClientProtocol(H11Protocol):
    """uvicorn's h11 protocol, which times out a request whose headers or body arrive too slowly."""

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
        self.header_timer: asyncio.TimerHandle | None = None
        self.body_timer: asyncio.TimerHandle | None = None
        self.body_timer_cycle: object = None  # the request whose body body_timer is waiting for

    # The moments the connection's state can move: opened, bytes read, a response ended, closed.
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._set_timers()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._set_timers()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # may start the next (pipelined) request
        self._set_timers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        self._cancel_body_timer()
        super().connection_lost(exc)

    def _ours(self) -> bool:
        """The connection is open and still ours (not closing, not handed to another protocol)."""
        return not self.transport.is_closing() and self.transport.get_protocol() is self

    def _set_timers(self) -> None:
        """A header deadline while a request's headers are awaited, a body deadline while its body is."""
        state = self.conn.their_state
        if state is h11.IDLE and self._ours():
            self._cancel_body_timer()
            if self.header_timer is None:
                self.header_timer = self.loop.call_later(self.header_timeout, self._header_timed_out)
        elif state is h11.SEND_BODY and self._ours():
            self._cancel_header_timer()
            if self.body_timer is None or self.body_timer_cycle is not self.cycle:
                self._cancel_body_timer()
                self.body_timer = self.loop.call_later(self.body_timeout, self._body_timed_out)
                self.body_timer_cycle = self.cycle
        else:  # the request has arrived (or the connection is closing, or an error was answered)
            self._cancel_header_timer()
            self._cancel_body_timer()

    def _cancel_header_timer(self) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None

    def _cancel_body_timer(self) -> None:
        if self.body_timer is not None:
            self.body_timer.cancel()
            self.body_timer = None
            self.body_timer_cycle = None

    def _header_timed_out(self) -> None:
        self.header_timer = None
        if not self._ours() or self.conn.their_state is not h11.IDLE:
            return
        unread, _closed = self.conn.trailing_data
        if not unread.lstrip(b"\r\n"):  # nothing of a request (blank lines are skipped): just close,
            self.transport.close()  # as an idle keep-alive connection is closed
            return
        self._refuse(f"the request's headers did not arrive within {self.header_timeout:g} s")

    def _body_timed_out(self) -> None:
        self.body_timer = None
        self.body_timer_cycle = None
        if not self._ours() or self.conn.their_state is not h11.SEND_BODY:
            return
        if self.flow.read_paused:  # we stopped reading (the application has not taken the body yet)
            self.body_timer = self.loop.call_later(self.body_timeout, self._body_timed_out)
            self.body_timer_cycle = self.cycle
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
        headers = [
            *self.server_state.default_headers,
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        try:
            parts = [
                self.conn.send(h11.Response(status_code=408, headers=headers, reason=STATUS_PHRASES[408])),
                self.conn.send(h11.Data(data=body)),
                self.conn.send(h11.EndOfMessage()),
            ]
        except h11.LocalProtocolError:  # not in a state to answer: just close
            parts = []
        self.transport.write(b"".join(part or b"" for part in parts))
        self.transport.close()
