"""Template filters: instants in the team's time zone, dates, numbers as the team reads them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, tzinfo
from typing import Any


def local(at: datetime | None, tz: tzinfo, pattern: str = "%Y-%m-%d %H:%M") -> str:
    return at.astimezone(tz).strftime(pattern) if at is not None else ""


def day(value: date | datetime | None, tz: tzinfo | None = None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return (value.astimezone(tz) if tz is not None else value).date().isoformat()
    return value.isoformat()


def num(value: float | int | None, places: int = 1) -> str:
    """A reading as the team reads it: whole mmHg, one decimal for mmol/L (trailing zeros kept)."""
    if value is None:
        return "–"
    return f"{value:.{places}f}"


def percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.1f}%"


def local_input(at: datetime, tz: tzinfo) -> str:
    """The value of an ``<input type="datetime-local">``."""
    return at.astimezone(tz).strftime("%Y-%m-%dT%H:%M")


FILTERS: dict[str, Callable[..., Any]] = {
    "local": local,
    "day": day,
    "num": num,
    "percent": percent,
    "local_input": local_input,
}
