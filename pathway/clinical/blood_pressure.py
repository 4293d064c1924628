"""Blood-pressure facts of the snapshot (PATHWAY.md §2): the mean of BP readings, whether home
readings fall on enough days for a home mean, and crisis confirmation (a crisis office BP, or enough
home crisis readings far enough apart) with the anchor of an unconfirmed one's recheck.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from pathway.clinical.anchors import ANCHOR_UNCONFIRMED_CRISIS
from pathway.clinical.conditions import FactValue
from pathway.clinical.history import Encounter, Measurement
from pathway.clinical.parameters import SnapshotWindows
from pathway.clinical.vocabulary import ReadingKind


def bp_mean(readings: Iterable[Measurement]) -> tuple[Decimal, Decimal] | None:
    bps = [r for r in readings if r.kind is ReadingKind.BP]
    if not bps:
        return None
    systolic = sum((r.systolic for r in bps if r.systolic is not None), Decimal(0)) / len(bps)
    diastolic = sum((r.diastolic for r in bps if r.diastolic is not None), Decimal(0)) / len(bps)
    return systolic, diastolic


def on_enough_days(readings: Sequence[Measurement], tz: ZoneInfo, needed: int) -> bool:
    """Whether ``readings`` fall on at least ``needed`` calendar days in ``tz`` (counted newest
    first, up to ``needed``: a wearable's week holds hundreds of readings, each a zone lookup)."""
    days: set[date] = set()
    for reading in reversed(readings):
        if len(days) >= needed:
            break
        days.add(reading.at.astimezone(tz).date())
    return len(days) >= needed


def crisis_facts(
    facts: dict[str, FactValue],
    anchors: dict[str, datetime],
    windows: SnapshotWindows,
    office: Encounter | None,
    office_bp: tuple[Decimal, Decimal] | None,
    bps: list[Measurement],
    as_of: datetime,
) -> None:
    """Confirmed / unconfirmed crisis BP and whether a crisis reading falls in the last window."""
    crisis = windows.crisis

    def is_crisis(systolic: Decimal, diastolic: Decimal) -> bool:
        return systolic >= crisis.systolic or diastolic >= crisis.diastolic

    window_start = as_of - timedelta(hours=crisis.window_hours)
    home_crises = [
        r
        for r in bps
        if r.source in crisis.home_sources
        and window_start <= r.at <= as_of
        and r.systolic is not None
        and r.diastolic is not None
        and is_crisis(r.systolic, r.diastolic)
    ]
    office_crisis = office is not None and office_bp is not None and is_crisis(*office_bp)
    separated = _separated_count(
        [r.at for r in home_crises], timedelta(minutes=crisis.confirm_min_separation_minutes)
    )
    confirmed = office_crisis or separated >= crisis.confirm_min_readings
    unconfirmed = not confirmed and bool(home_crises)
    crisis_times = [r.at for r in home_crises]
    if office_crisis and office is not None:
        crisis_times.append(office.at)
    facts["bp_crisis_confirmed"] = confirmed
    facts["bp_crisis_unconfirmed"] = unconfirmed
    facts["bp_crisis_recent"] = bool(crisis_times) and window_start <= max(crisis_times) <= as_of
    if unconfirmed:
        # The recheck counts from the newest crisis reading: a second one inside the confirmation
        # gap is not the recheck of the first (PATHWAY.md §2).
        anchors[ANCHOR_UNCONFIRMED_CRISIS] = max(r.at for r in home_crises)


def _separated_count(times: list[datetime], gap: timedelta) -> int:
    """The most readings that can be picked with every two at least ``gap`` apart."""
    count = 0
    last: datetime | None = None
    for at in sorted(times):
        if last is None or at - last >= gap:
            count += 1
            last = at
    return count
