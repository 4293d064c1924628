"""Moments that task due times are computed from (see rules' task catalogue).

:func:`pathway.clinical.snapshot.build_snapshot` records them in ``Snapshot.anchors``;
:func:`pathway.clinical.assessment.assess` counts due times (and what resolves a task) from them.
"""

from __future__ import annotations

from pathway.clinical.vocabulary import CareCheck, ReadingKind

ANCHOR_UNCONFIRMED_CRISIS = "unconfirmed_crisis_reading"
ANCHOR_LDL_C = "ldl_c_measured"
ANCHOR_LATEST_ENCOUNTER = "latest_encounter"


def check_anchor(check: CareCheck) -> str:
    return f"last_{check.value}"


def reading_anchor(kind: ReadingKind) -> str:
    """The anchor of the latest reading of ``kind`` (any source)."""
    return f"latest_{kind.value}_reading"
