"""FHIR search parameters as the read-out takes them: ``date`` with its prefixes, tokens, ``_count``
and the page cursor. Pure; a bad value is 400 ``invalid-search-parameter`` naming the parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pathway.clinical.errors import PathwayError

DEFAULT_COUNT = 50
MAX_COUNT = 200
"""A page holds at most this many entries (FHIR lets a server return fewer than ``_count`` asks)."""
PAGING_PARAMETERS = ("_count", "_cursor")
DATE_PREFIXES = ("ge", "gt", "le", "lt", "eq")


class InvalidSearch(PathwayError):
    """A search parameter we do not serve, or a value we cannot read (the FHIR 400)."""

    code = "invalid-search-parameter"
    status = 400


@dataclass(frozen=True)
class Page:
    """How many entries a page holds, and the (instant, id) of the last entry of the page before."""

    count: int
    after: tuple[datetime, int] | None = None


def date_bounds(values: list[str], tz: ZoneInfo, parameter: str = "date") -> list[tuple[str, datetime]]:
    """Each ``date`` value (``ge2026-01-01``, ``lt2026-03-01T08:00:00+08:00``, ``2026-02-14``…) as
    comparisons of the instant. A day is the clinic's day (``tz``); ``eq`` (or no prefix) means
    within the day, or exactly the instant. A time needs its UTC offset."""
    bounds: list[tuple[str, datetime]] = []
    for value in values:
        prefix, rest = (value[:2], value[2:]) if value[:2].isalpha() else ("eq", value)
        if prefix not in DATE_PREFIXES:
            raise InvalidSearch(f"date prefix {prefix!r}: one of {', '.join(DATE_PREFIXES)}", parameter)
        start, end = _span(rest, tz, parameter)
        if prefix == "eq":
            bounds += [("ge", start), ("lt", end) if end != start else ("le", end)]
        elif prefix in ("ge", "lt"):
            bounds.append((prefix, start))
        elif prefix == "gt":
            bounds.append(("ge", end) if end != start else ("gt", end))
        else:  # le: up to the end of the day
            bounds.append(("lt", end) if end != start else ("le", end))
    return bounds


def _span(text: str, tz: ZoneInfo, parameter: str) -> tuple[datetime, datetime]:
    """The instants a date or dateTime value covers: a day (its start, the next day's start) or one."""
    try:
        if "T" not in text:  # a date: the whole day
            day = date.fromisoformat(text)
            start = datetime.combine(day, time(), tzinfo=tz)
            return start, start + timedelta(days=1)
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidSearch(f"not a FHIR date or dateTime: {text!r}", parameter) from None
    if at.tzinfo is None:
        raise InvalidSearch(f"a dateTime needs its UTC offset: {text!r}", parameter)
    return at, at


def page_of(values: dict[str, list[str]]) -> Page:
    """``_count`` (1 to :data:`MAX_COUNT`; more is served as the most) and ``_cursor``."""
    count = DEFAULT_COUNT
    if values.get("_count"):
        text = values["_count"][-1]
        if not text.isdigit() or int(text) < 1:
            raise InvalidSearch("_count is a whole number of at least 1", "_count")
        count = min(int(text), MAX_COUNT)
    after = None
    if values.get("_cursor"):
        after = cursor_value(values["_cursor"][-1])
    return Page(count, after)


def cursor_text(at: datetime, row_id: int) -> str:
    return f"{at.isoformat()}~{row_id}"


def cursor_value(text: str) -> tuple[datetime, int]:
    instant, _, row_id = text.partition("~")
    try:
        at = datetime.fromisoformat(instant)
    except ValueError:
        raise InvalidSearch("not a cursor of ours: take the next link as given", "_cursor") from None
    if at.tzinfo is None or not row_id.isdigit():
        raise InvalidSearch("not a cursor of ours: take the next link as given", "_cursor")
    return at, int(row_id)


def tokens(values: list[str], system: str | None = None) -> set[str]:
    """The codes of token values (``code``, ``system|code``, comma-separated: any of them); with
    ``system``, a code of another system matches nothing (it is left out)."""
    found: set[str] = set()
    for value in values:
        for token in value.split(","):
            named, bar, code = token.rpartition("|")
            if bar and system is not None and named not in ("", system):
                continue
            if code:
                found.add(code)
    return found


def reference_id(value: str, resource_type: str, parameter: str) -> int:
    """Our id in a reference parameter (``42`` or ``Patient/42``)."""
    text = value.removeprefix(f"{resource_type}/")
    if not text.isdigit() or not 1 <= int(text) <= 2_147_483_647:
        raise InvalidSearch(
            f"{parameter} names a {resource_type} by its id ({resource_type}/<id>)", parameter
        )
    return int(text)
