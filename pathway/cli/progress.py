"""A progress bar on a terminal (rate and ETA), plain periodic lines otherwise: for long CLI runs."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

_WIDTH = 30


class ProgressBar:
    """Called with (done, total) as work completes. On a terminal it redraws one line
    (``[#####.....] done/total  pct  rate/s  ETA m:ss``); otherwise it writes a line at most every
    ``every`` seconds and one at the end. ``quiet``: nothing."""

    def __init__(
        self,
        stream: TextIO,
        unit: str,
        *,
        quiet: bool = False,
        every: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._unit = unit
        self._quiet = quiet
        self._tty = stream.isatty()
        self._every = every
        self._clock = clock
        self._start = clock()
        self._last_line = self._start

    def __call__(self, done: int, total: int) -> None:
        if self._quiet:
            return
        now = self._clock()
        finished = done >= total
        if not self._tty and not finished and now - self._last_line < self._every:
            return
        self._last_line = now
        line = self.line(done, total, now - self._start)
        if self._tty:
            self._stream.write("\r" + line + ("\n" if finished else ""))
        else:
            self._stream.write(line + "\n")
        self._stream.flush()

    def line(self, done: int, total: int, elapsed: float) -> str:
        fraction = done / total if total else 1.0
        filled = int(fraction * _WIDTH)
        rate = done / elapsed if elapsed > 0 else 0.0
        remaining = (total - done) / rate if rate > 0 else None
        eta = "--:--" if remaining is None else _clock_time(remaining)
        bar = "#" * filled + "." * (_WIDTH - filled)
        return (
            f"[{bar}] {done:,}/{total:,} {fraction:6.1%}  {rate:,.0f} {self._unit}/s  ETA {eta}"
            f"  elapsed {_clock_time(elapsed)}"
        )


def _clock_time(seconds: float) -> str:
    minutes, rest = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{rest:02d}" if hours else f"{minutes}:{rest:02d}"
