"""Requests per API key, as token buckets: a burst from one gateway is refused, others go on.

Each key has its own bucket of ``burst`` tokens, refilled at ``per_second``; a request takes one.
An empty bucket answers ``rate-limited`` (429) with the seconds until a token is back
(``Retry-After``). Buckets live in the server process (with several worker processes each has
its own, so the limit applies per process). ``per_second = 0`` turns limiting off.

The same buckets, keyed by client address, count failed authentications
(:meth:`RateLimiter.refuse_if_spent` before a key is checked, :meth:`RateLimiter.take` after it
failed): an address that keeps presenting invalid keys is refused (429) without its keys being
looked up, valid or not, until its bucket refills.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable

from pathway.clinical.errors import RateLimited


class RateLimiter:
    def __init__(
        self, per_second: float, burst: int, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_second = per_second
        self.burst = max(burst, 1)
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._buckets: dict[Hashable, tuple[float, float]] = {}  # key id or address -> (tokens, at)

    def take(self, key_id: Hashable, what: str = "requests for this API key") -> None:
        """Spend one token of this key's bucket, or raise RateLimited with Retry-After."""
        self._spend(key_id, what, 1)

    def refuse_if_spent(self, key_id: Hashable, what: str) -> None:
        """Raise RateLimited if this bucket has no token left (spending none)."""
        self._spend(key_id, what, 0)

    def _spend(self, key_id: Hashable, what: str, cost: int) -> None:
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
                    f"too many {what} (at most {self.per_second:g}/s, bursts of {self.burst}); "
                    f"retry in {wait} s",
                    "Authorization",
                    {"Retry-After": str(wait)},
                )
            if len(self._buckets) > _MOST_BUCKETS and key_id not in self._buckets:
                self._forget_full(now)
            self._buckets[key_id] = (tokens - cost, now)

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that have refilled (an address seen once must not stay forever)."""
        for bucket, (tokens, at) in list(self._buckets.items()):
            if tokens + (now - at) * self.per_second >= self.burst:
                del self._buckets[bucket]


_MOST_BUCKETS = 10_000
