"""How far back a reassessment has to read a patient's self-measured readings.

A wearable or CGM stream grows without end (a CGM sends 96 readings a day), and every ingest
re-tiers the patient. :func:`pathway.clinical.snapshot.build_snapshot` reads readings taken outside a visit
(home, wearable, CGM, lab) in three ways only:

- every reading inside a short window ending at ``as_of``: BP for the home mean
  (``home_bp.window_days``) and crises (``crisis.window_hours``); glucose for acute values
  (``acute_glucose_window_hours``) and self-monitoring (``self_monitored_glucose_window_days``);
- the highest glucose value of a kind inside a long window (``pregnancy_glucose_window_days``:
  the recent FPG and non-fasting maxima);
- the latest reading of each kind up to ``as_of`` (days since the last BP or glucose, the latest
  lab and its age, the anchors of due times, lab evidence of a check).

So :func:`recent` keeps, of the readings outside a visit: all those inside the short window; before
it, inside the long window, the glucose readings at the highest value of their kind there (the
maximum over the long window is then the same); and before the short window, the latest of each
kind with none inside it. Nothing else changes a snapshot. A CGM's 90 days (8,640 readings) are
read as one week and a handful of peaks.
Clinic readings, visits, symptoms and checks are kept whole (few, and read by the visit
classification). A window added to the snapshot must be added to :func:`reading_horizon`;
tests/rules/test_recent_history.py compares snapshots of whole and recent histories to catch one
that was not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from pathway.clinical.history import Measurement, PatientHistory
from pathway.clinical.parameters import SnapshotWindows
from pathway.clinical.vocabulary import GLUCOSE_KINDS, ReadingKind, ReadingSource


@dataclass(frozen=True)
class ReadingHorizon:
    """What a reassessment reads of the readings outside a visit (see the module's docstring)."""

    every: timedelta  # every reading this recent
    peaks: timedelta  # ...and, this recent, the readings at the highest value of their kind
    peak_kinds: frozenset[ReadingKind]


def reading_horizon(windows: SnapshotWindows) -> ReadingHorizon:
    """The short window (the longest the snapshot reads every reading of) and the long one (that it
    reads only the glucose maxima of)."""
    every = max(
        timedelta(days=windows.home_bp.window_days),
        timedelta(hours=windows.crisis.window_hours),
        timedelta(hours=windows.acute_glucose_window_hours),
        timedelta(days=windows.self_monitored_glucose_window_days),
    )
    peaks = max(every, timedelta(days=windows.pregnancy_glucose_window_days))
    return ReadingHorizon(every=every, peaks=peaks, peak_kinds=GLUCOSE_KINDS)


def recent(history: PatientHistory, as_of: datetime, horizon: ReadingHorizon) -> PatientHistory:
    """``history`` without the readings outside a visit that no snapshot as of ``as_of`` reads.

    Of those before ``since = as_of - horizon.every`` it keeps: the latest (and any at the same
    instant) of each kind with none in ``[since, as_of]``; and, from ``as_of - horizon.peaks`` on,
    those of a peak kind at the highest value of their kind there.
    :func:`pathway.patients.history_store.history_rows` reads the same from the store."""
    since = as_of - horizon.every
    peaks_since = as_of - horizon.peaks
    covered = {r.kind for r in history.readings if _not_clinic(r) and since <= r.at <= as_of}
    latest_before: dict[ReadingKind, datetime] = {}
    peak: dict[ReadingKind, Decimal] = {}
    for reading in history.readings:
        if not _not_clinic(reading) or reading.at >= since:
            continue
        if reading.kind not in covered:
            newest = latest_before.get(reading.kind)
            if newest is None or reading.at > newest:
                latest_before[reading.kind] = reading.at
        if _in_peaks(reading, peaks_since, horizon):
            assert reading.value is not None
            highest = peak.get(reading.kind)
            if highest is None or reading.value > highest:
                peak[reading.kind] = reading.value
    kept = tuple(
        r
        for r in history.readings
        if not _not_clinic(r)
        or r.at >= since
        or r.at == latest_before.get(r.kind)
        or (_in_peaks(r, peaks_since, horizon) and r.value == peak[r.kind])
    )
    return PatientHistory(
        profile=history.profile,
        encounters=history.encounters,
        readings=kept,
        symptoms=history.symptoms,
        checks=history.checks,
    )


def _in_peaks(reading: Measurement, peaks_since: datetime, horizon: ReadingHorizon) -> bool:
    """A reading before the short window whose value counts towards its kind's long-window peak."""
    return reading.kind in horizon.peak_kinds and reading.value is not None and reading.at >= peaks_since


def _not_clinic(reading: Measurement) -> bool:
    return reading.source is not ReadingSource.CLINIC
