"""Every error the API answers is ``{"code", "message", "field"?}``: also Starlette's own (an unknown
route, a method the route does not take) and a body that is not JSON, whose field is the body, never
a character offset."""

from __future__ import annotations

from fastapi.testclient import TestClient


def _shaped(answer: object, status: int, code: str) -> dict[str, str]:
    response = answer  # a TestClient response
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body: dict[str, str] = response.json()  # type: ignore[attr-defined]
    assert set(body) <= {"code", "message", "field"}
    assert body["code"] == code
    return body


def test_an_unknown_route_is_a_shaped_404(client: TestClient) -> None:
    _shaped(client.get("/v1/no-such-thing"), 404, "not-found")


def test_a_method_the_route_does_not_take_is_a_shaped_405(client: TestClient) -> None:
    _shaped(client.delete("/v1/rule-packs"), 405, "method-not-allowed")


def test_a_body_that_is_not_json_names_the_body_not_a_character_offset(client: TestClient) -> None:
    answer = client.post("/v1/patients", content='{"a": 1,, }', headers={"Content-Type": "application/json"})
    body = _shaped(answer, 422, "invalid-input")
    assert body["field"] == "body"
    assert "char" not in body["message"]
