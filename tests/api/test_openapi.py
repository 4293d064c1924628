"""The committed OpenAPI document is exactly what the code generates (regenerate: python -m api.openapi)."""

from __future__ import annotations

import json
from typing import Any

from api.openapi import TARGET, render
from pathway.clinical.errors import STORABLE_TEXT


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


def test_every_text_a_request_may_send_refuses_the_nul_character() -> None:
    """PostgreSQL text cannot hold U+0000: every free text of a request (body, query, header, path) is
    declared ``Text``, whose pattern refuses it before anything is stored. A text field added without
    it fails here, whatever the model it is in."""
    spec = json.loads(render())
    schemas = spec["components"]["schemas"]
    unguarded: list[str] = []

    def walk(node: Any, where: str, seen: frozenset[str]) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item, where, seen)
            return
        if not isinstance(node, dict):
            return
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if name not in seen:
                walk(schemas[name], f"{where} → {name}", seen | {name})
            return
        free_text = node.get("type") == "string" and not {"enum", "const", "format"} & node.keys()
        if free_text and node.get("pattern") != STORABLE_TEXT:
            unguarded.append(where)
        for name, child in node.get("properties", {}).items():
            walk(child, f"{where}.{name}", seen)
        for key in ("additionalProperties", "items", "oneOf", "allOf", "prefixItems"):
            walk(node.get(key), where, seen)
        alternatives = node.get("anyOf", [])
        # A decimal is number | string: the string is a number written out, never stored as text.
        if {"type": "number"} in alternatives:
            alternatives = [a for a in alternatives if a.get("type") != "string"]
        walk(alternatives, where, seen)

    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                walk(parameter["schema"], f"{where} {parameter['in']} {parameter['name']}", frozenset())
            for content in operation.get("requestBody", {}).get("content", {}).values():
                walk(content["schema"], f"{where} body", frozenset())
    assert unguarded == []
