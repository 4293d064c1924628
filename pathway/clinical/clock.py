"""The clock is passed in: no module of the domain reads the wall clock by itself."""

from __future__ import annotations

from datetime import date, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

CLINIC_TZ = ZoneInfo("Asia/Shanghai")


class Clock(Protocol):
    """Something that tells the current instant as a timezone-aware datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real clock, in the clinic's time zone."""

    def __init__(self, tz: ZoneInfo = CLINIC_TZ) -> None:
        self._tz = tz

    def now(self) -> datetime:
        return datetime.now(self._tz)


class FixedClock:
    """A clock stopped at one instant (tests, replays)."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware datetime")
        self._at = at

    def now(self) -> datetime:
        return self._at


def clinic_date(at: datetime, tz: ZoneInfo = CLINIC_TZ) -> date:
    """The calendar date of an instant in the clinic's time zone."""
    return at.astimezone(tz).date()
