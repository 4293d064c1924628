"""Use-cases of the ``Idempotency-Key``: the fingerprint of a request, the answer kept for it, and
that answer replayed to a retry of the same request (another body under the same key is a 409).
They never commit: the request owns the transaction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter
from sqlmodel import Session

from pathway.clinical.errors import PathwayError
from pathway.ingest import idempotency_store
from pathway.ingest.inbound import InvalidReading, ReadingIn
from pathway.ingest.medication_in import PrescriptionIn


class IdempotencyKeyReused(PathwayError):
    code = "idempotency-key-reused"
    status = 409


_READINGS = TypeAdapter(list[ReadingIn])
_PRESCRIPTIONS = TypeAdapter(list[PrescriptionIn])


def request_fingerprint(payload: Any) -> str:
    """sha256 of a request body in canonical JSON (key order and spacing do not matter).

    Lone surrogates (``\\ud800`` in the JSON, left in an item that is rejected) are hashed too.
    """
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode(errors="surrogatepass")).hexdigest()


def readings_fingerprint(items: Sequence[ReadingIn | InvalidReading]) -> str:
    """sha256 of a readings batch: the readings as validated (fields in the model's order, so key
    order and spacing do not matter; serialised in one call to pydantic's core), then each invalid
    item as sent, with its place, in canonical JSON."""
    return _batch_fingerprint(_READINGS, items)


def prescriptions_fingerprint(items: Sequence[PrescriptionIn | InvalidReading]) -> str:
    """sha256 of a prescriptions batch, as :func:`readings_fingerprint` makes a readings batch's."""
    return _batch_fingerprint(_PRESCRIPTIONS, items)


def _batch_fingerprint(adapter: TypeAdapter[Any], items: Sequence[object]) -> str:
    valid = [item for item in items if not isinstance(item, InvalidReading)]
    invalid = [(index, item.raw) for index, item in enumerate(items) if isinstance(item, InvalidReading)]
    digest = hashlib.sha256(adapter.dump_json(valid))
    if invalid:
        digest.update(request_fingerprint(invalid).encode())
    return digest.hexdigest()


def replayed_answer(
    session: Session, api_key_id: int, scope: str, key: str, fingerprint: str
) -> idempotency_store.StoredAnswer | None:
    """The stored answer to an earlier request of this API key with this key, or None; a different
    body is a 409. Another API key's use of the same key is not seen."""
    prior = idempotency_store.idempotent_answer(session, api_key_id, scope, key)
    if prior is not None and prior.request_sha256 != fingerprint:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used for a different request body", "Idempotency-Key"
        )
    return prior


def remember_answer(
    session: Session,
    api_key_id: int,
    scope: str,
    key: str,
    fingerprint: str,
    status_code: int,
    body: dict[str, Any],
    now: datetime,
) -> None:
    idempotency_store.insert_idempotent_answer(
        session,
        {
            "api_key_id": api_key_id,
            "scope": scope,
            "key": key,
            "request_sha256": fingerprint,
            "status_code": status_code,
            "response": body,
            "created_at": now,
        },
    )
