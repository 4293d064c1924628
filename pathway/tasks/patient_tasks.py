"""A patient's care tasks as the task routes, the patient page and the care plan read them: by
priority, then due time, then id; the open ones only, or every one kept (closed ones with their
outcome)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session

from pathway.store.work_tables import CareTask
from pathway.tasks import task_store


def tasks_of(session: Session, patient_id: int, *, open_only: bool) -> Sequence[CareTask]:
    return task_store.tasks_of(session, patient_id, open_only=open_only)


def open_tasks_of(session: Session, patient_id: int) -> Sequence[CareTask]:
    return task_store.open_tasks_of(session, patient_id)
