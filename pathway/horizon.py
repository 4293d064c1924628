"""How far back a reassessment has to read a patient's self-measured readings.

A wearable or CGM stream grows without end (a CGM sends 96 readings a day), and every ingest
re-tiers the patient. :func:`pathway.snapshot.build_snapshot` reads readings taken outside a visit
(home, wearable, CGM, lab) in two ways only:

- inside a window ending at ``as_of``: BP for the home mean (``home_bp.window_days``) and crises
  (``crisis.window_hours``); glucose for acute values (``acute_glucose_window_hours``),
  self-monitoring (``self_monitored_glucose_window_days``) and the recent maximum
  (``pregnancy_glucose_window_days``);
- the latest reading of each kind up to ``as_of`` (days since the last BP or glucose, the latest
  lab and its age, the anchors of due times, lab evidence of a check).

So a reading older than the longest of these windows never changes a snapshot, unless it is the
latest of a kind with no reading inside the window: :func:`recent` drops the others. (One horizon
for every kind keeps the store's statement simple and cheap for short histories; BP alone would
need only its week.)
Clinic readings, visits, symptoms and checks are kept whole (few, and read by the visit
classification). A window added to the snapshot must be added to :func:`reading_horizons`;
tests/rules/test_recent_history.py compares snapshots of whole and recent histories to catch one
that was not.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pathway.history import Measurement, PatientHistory
from pathway.parameters import SnapshotWindows
from pathway.vocabulary import ReadingKind, ReadingSource


def reading_horizon(windows: SnapshotWindows) -> timedelta:
    """The longest window the snapshot applies to readings outside a visit (of any kind)."""
    return max(
        timedelta(days=windows.home_bp.window_days),
        timedelta(hours=windows.crisis.window_hours),
        timedelta(hours=windows.acute_glucose_window_hours),
        timedelta(days=windows.self_monitored_glucose_window_days),
        timedelta(days=windows.pregnancy_glucose_window_days),
    )


def recent(history: PatientHistory, as_of: datetime, horizon: timedelta) -> PatientHistory:
    """``history`` without the readings outside a visit that no snapshot as of ``as_of`` reads:
    those before ``as_of - horizon``, except the latest of them (and any at the same instant) of a
    kind with none in ``[as_of - horizon, as_of]``. :func:`pathway.repository.history_rows` reads
    the same from the store."""
    since = as_of - horizon
    covered = {r.kind for r in history.readings if _not_clinic(r) and since <= r.at <= as_of}
    latest_before: dict[ReadingKind, datetime] = {}
    for reading in history.readings:
        if _not_clinic(reading) and reading.at < since and reading.kind not in covered:
            newest = latest_before.get(reading.kind)
            if newest is None or reading.at > newest:
                latest_before[reading.kind] = reading.at
    kept = tuple(
        r
        for r in history.readings
        if not _not_clinic(r) or r.at >= since or r.at == latest_before.get(r.kind)
    )
    return PatientHistory(
        profile=history.profile,
        encounters=history.encounters,
        readings=kept,
        symptoms=history.symptoms,
        checks=history.checks,
    )


def _not_clinic(reading: Measurement) -> bool:
    return reading.source is not ReadingSource.CLINIC
