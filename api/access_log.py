"""The access log: one line a request, ``METHOD /path STATUS DURATIONms key=PREFIX``.

Logged as ``pathway.access`` at INFO when the request ends (``pathway serve`` prints it on stdout;
``PATHWAY_ACCESS_LOG=false`` leaves the middleware out). Only the path is logged, never the query
string (a search holds names and phone numbers), a key, a cookie or a body: the key is named by
its public prefix, once authenticated (``-`` otherwise), as the audit trail names it.
"""

from __future__ import annotations

import logging
import time

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ACCESS_LOGGER = logging.getLogger("pathway.access")
KEY_PREFIX_STATE = "key_prefix"


def note_key(connection: HTTPConnection, prefix: str) -> None:
    """Name the request's authenticated key (by its prefix) in its access-log line."""
    setattr(connection.state, KEY_PREFIX_STATE, prefix)


class AccessLog:
    """Pure ASGI middleware (no per-request task or body buffering): it only watches the status."""

    def __init__(self, app: ASGIApp, logger: logging.Logger = ACCESS_LOGGER) -> None:
        self.app = app
        self.logger = logger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.logger.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception before any answer is what the client sees as a 500

        async def watching(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watching)
        finally:
            prefix = scope.get("state", {}).get(KEY_PREFIX_STATE) or "-"
            self.logger.info(
                "%s %s %d %.1fms key=%s",
                scope["method"],
                scope.get("root_path", "") + scope["path"],
                status,
                (time.perf_counter() - started) * 1000,
                prefix,
            )
