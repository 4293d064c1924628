"""The committed OpenAPI document is exactly what the code generates (regenerate: python -m api.openapi)."""

from __future__ import annotations

from api.openapi import TARGET, render


def test_the_committed_openapi_document_matches_the_code() -> None:
    assert TARGET.read_text(encoding="utf-8") == render(), "run `python -m api.openapi` and commit the result"
