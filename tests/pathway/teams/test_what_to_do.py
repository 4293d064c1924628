"""Every task kind the pack can issue reads as an action on the daily list, in both languages."""

from __future__ import annotations

from pathway.clinical.tiers import TaskKind
from pathway.teams.daily_tasks import WHAT_TO_DO


def test_every_task_kind_says_what_to_do_in_chinese_and_english() -> None:
    missing = [kind.value for kind in TaskKind if kind.value not in WHAT_TO_DO]
    assert missing == []
    for kind, (zh, en) in WHAT_TO_DO.items():
        assert zh, kind
        assert en, kind
        assert zh != en, kind
