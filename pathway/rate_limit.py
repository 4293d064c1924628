"""Requests per API key, as token buckets: a burst from one gateway is refused, others go on.

Each key has its own bucket of ``burst`` tokens, refilled at ``per_second``; a request takes one.
An empty bucket answers ``rate-limited`` (429) with the seconds until a token is back
(``Retry-After``). Buckets live in the server process (with several worker processes each has
its own, so the limit applies per process). ``per_second = 0`` turns limiting off.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from pathway.errors import RateLimited


class RateLimiter:
    def __init__(
        self, per_second: float, burst: int, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_second = per_second
        self.burst = max(burst, 1)
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._buckets: dict[int, tuple[float, float]] = {}  # key id -> (tokens, at)

    def take(self, key_id: int) -> None:
        """Spend one token of this key's bucket, or raise RateLimited with Retry-After."""
        if self.per_second <= 0:
            return
        now = self._monotonic()
        with self._lock:
            tokens, at = self._buckets.get(key_id, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.per_second)
            if tokens < 1:
                self._buckets[key_id] = (tokens, now)
                wait = math.ceil((1 - tokens) / self.per_second)
                raise RateLimited(
                    f"too many requests for this API key (at most {self.per_second:g}/s, "
                    f"bursts of {self.burst}); retry in {wait} s",
                    "Authorization",
                    {"Retry-After": str(wait)},
                )
            self._buckets[key_id] = (tokens - 1, now)
