"""The one envelope of the batch-ingest routes (readings, prescriptions): the ``Idempotency-Key``
replay, the batch stored and the patient re-tiered, the answer kept for a retry, one commit.

A route says what its batch is (its scope, how its body is fingerprinted, how it is stored and
answered); this module does the rest the same way for every batch: a replay of the same body under
the same key returns the first answer unchanged (header ``Idempotent-Replayed: true``), another
body is a 409 (``idempotency-key-reused``), and only the caller's own keys are seen.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from fastapi import status
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlmodel import Session

from pathway.access.permissions import Caller
from pathway.ingest import idempotency

Answer = TypeVar("Answer", bound=BaseModel)


def answered_once(
    session: Session,
    key: Caller,
    scope: str,
    idempotency_key: str | None,
    *,
    fingerprint: Callable[[], str],
    answer: Callable[[], Answer],
    now: datetime,
) -> Answer | JSONResponse:
    """``answer()`` (which stores the batch and re-tiers the patient) run once per Idempotency-Key
    and body, its result kept for a retry; the transaction committed either way. The fingerprint
    is only computed when a key is given."""
    if idempotency_key is None:
        result = answer()
        session.commit()
        return result
    digest = fingerprint()
    prior = idempotency.replayed_answer(session, key.id, scope, idempotency_key, digest)
    if prior is not None:
        session.commit()  # the audit of this replay
        return JSONResponse(
            prior.response, status_code=prior.status_code, headers={"Idempotent-Replayed": "true"}
        )
    result = answer()
    body = result.model_dump(mode="json")
    idempotency.remember_answer(
        session, key.id, scope, idempotency_key, digest, status.HTTP_201_CREATED, body, now
    )
    session.commit()
    return result
