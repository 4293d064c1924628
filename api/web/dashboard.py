"""The team dashboard's indicators over months, computed off the request and kept for a while.

One computation loads the team's histories once (:func:`pathway.teams.indicator_store.clinical_rows`, as the
indicators API does) and evaluates :func:`pathway.teams.indicators.compute` at every month end and now
(:func:`pathway.teams.indicators.indicators_over_time`): each point is what ``GET
/v1/teams/{id}/indicators?to=<that day>`` answers, and the last one what it answers now.

For a team of 2,000 patients that is seconds of work (the histories alone take about a second to
load on SQLite), far beyond a page's budget. So it runs in a background thread, one at a time per
team and span, and the page shows the last result with the moment it was computed ("as of"); a
result older than ``dashboard_ttl_seconds`` is shown while a fresh one is computed. A request
that starts a computation with nothing to show may wait ``dashboard_wait_seconds`` for it (0 by
default: a small team's is done by the first refresh); otherwise the page answers at once and
refreshes itself every second until the result is there.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session

from api.web.session import WebSettings
from pathway.clinical.vocabulary import Condition
from pathway.patients.history import history_from_rows
from pathway.patients.reassessment import PathwayConfig
from pathway.teams import indicator_store, indicators, team_store

log = logging.getLogger("pathway.web")


@dataclass(frozen=True)
class DashboardData:
    team_id: int
    computed_at: datetime  # the "now" of the last point
    moments: list[datetime]
    trend: list[indicators.TeamIndicators]  # one per moment, oldest first
    seconds: float  # how long the computation took

    @property
    def current(self) -> indicators.TeamIndicators:
        return self.trend[-1]


def compute(
    engine: Engine, config: PathwayConfig, team_id: int, timezone: str, months: int, now: datetime
) -> DashboardData:
    """The team's indicators at the end of each of the last ``months - 1`` months and at ``now``
    (plain arguments: this runs in its own thread, with its own session)."""
    started = time.perf_counter()
    zone = ZoneInfo(timezone)
    moments = indicators.month_ends(now, months, zone)
    with Session(engine) as session:
        patients = indicator_store.team_patients(session, team_id, now, zone)
        ids = [p.id for p in patients if p.id is not None]
        with_prescriptions = [p.id for p in patients if p.id is not None and p.has_prescriptions]
        rows = indicator_store.clinical_rows(session, ids, now, with_prescriptions)
        current = team_store.latest_tiers(session, ids, made_by=now)
    members = []
    for patient in patients:
        assert patient.id is not None
        mine = rows[patient.id]
        members.append(
            indicators.TeamMember(
                patient_id=patient.id,
                registered_at=indicators.registered_at(patient, zone),
                managed_until=None if indicators.managed_at(patient, now) else patient.status_changed_at,
                conditions=frozenset(Condition(c) for c in patient.conditions),
                history=history_from_rows(
                    patient,
                    mine.complications,
                    mine.readings,
                    mine.encounters,
                    mine.symptoms,
                    mine.checks,
                    mine.prescriptions,
                ),
            )
        )
    tiers = {now: current}
    trend = indicators.indicators_over_time(
        members,
        moments,
        tiers,
        config.facts,
        config.indicators,
        config.targets.glucose,
        zone,
        config.medication,
    )
    return DashboardData(team_id, now, moments, trend, time.perf_counter() - started)


Key = tuple[int, int, str]  # team id, months, pack sha256


class DashboardCache:
    """The last dashboard computed per (team, months, pack), refreshed by one background thread per key."""

    def __init__(self, settings: WebSettings, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.ttl = settings.dashboard_ttl_seconds
        self.wait = settings.dashboard_wait_seconds
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._entries: dict[Key, tuple[float, DashboardData]] = {}
        self._running: dict[Key, threading.Event] = {}

    def get(self, key: Key, compute_it: Callable[[], DashboardData]) -> tuple[DashboardData | None, bool]:
        """(the last result or None, whether a fresher one is being computed)."""
        with self._lock:
            entry = self._entries.get(key)
            fresh = entry is not None and self._monotonic() - entry[0] < self.ttl
            if fresh:
                return entry[1] if entry else None, False
            done = self._running.get(key)
            started = done is None
            if done is None:
                done = threading.Event()
                self._running[key] = done
                threading.Thread(
                    target=self._run, args=(key, compute_it, done), name=f"dashboard-{key[0]}", daemon=True
                ).start()
        if entry is None and started and self.wait > 0:
            done.wait(self.wait)  # only the request that started it: the others answer at once
        with self._lock:
            entry = self._entries.get(key)
            return (entry[1] if entry else None), key in self._running

    def _run(self, key: Key, compute_it: Callable[[], DashboardData], done: threading.Event) -> None:
        try:
            data = compute_it()
            with self._lock:
                self._entries[key] = (self._monotonic(), data)
        except Exception:  # logged; the next request tries again
            log.exception("dashboard computation failed for team %s", key[0])
        finally:
            with self._lock:
                self._running.pop(key, None)
            done.set()
