"""The committed OpenAPI document is exactly what the code generates (regenerate: python -m api.openapi)."""

from __future__ import annotations

import json
from typing import Any

from api.openapi import TARGET, render


def test_the_committed_openapi_document_matches_the_code() -> None:
    assert TARGET.read_text(encoding="utf-8") == render(), "run `python -m api.openapi` and commit the result"


def test_every_route_documents_the_refusals_that_apply_to_it() -> None:
    """A body over the size limit is a 413 before any route runs, and a key over its rate a 429:
    a client generated from the document must know both."""
    spec = json.loads(render())
    operations = [op for ops in spec["paths"].values() for op in ops.values()]
    with_body = [op["operationId"] for op in operations if "requestBody" in op]
    keyed = [op["operationId"] for op in operations if "401" in op["responses"]]
    assert with_body
    assert keyed
    assert [name for name in with_body if "413" not in _by_id(operations, name)["responses"]] == []
    assert [name for name in keyed if "429" not in _by_id(operations, name)["responses"]] == []


def _by_id(operations: list[dict[str, Any]], operation_id: str) -> dict[str, Any]:
    return next(op for op in operations if op["operationId"] == operation_id)
