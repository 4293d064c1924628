"""/docs and /redoc load every script, stylesheet and icon from this server (they work offline)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from pathway.settings import Settings
from rules.evaluation import Evaluator


@pytest.fixture
def docs_client(tmp_path: Path, evaluator: Evaluator) -> Iterator[TestClient]:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'pathway.db'}"), evaluator=evaluator)
    with TestClient(app) as client:
        yield client
    app.state.engine.dispose()


def _referenced(html: str) -> list[str]:
    """Every URL the page loads: src and href attributes, Swagger UI's spec url, ReDoc's spec-url."""
    return re.findall(r'(?:src|href|spec-url)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html)


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png", "openapi.json"}),
        ("/redoc", {"redoc.js", "favicon.png", "openapi.json"}),
    ],
)
def test_the_docs_pages_load_only_local_files_and_each_is_served(
    docs_client: TestClient, page: str, expected: set[str]
) -> None:
    answer = docs_client.get(page)
    assert answer.status_code == 200
    html = answer.text
    assert "http://" not in html
    assert "https://" not in html
    urls = _referenced(html)
    assert {url.rsplit("/", 1)[-1] for url in urls} == expected
    for url in urls:
        assert url.startswith("/"), url
        assert not url.startswith("//"), url
        served = docs_client.get(url)
        assert served.status_code == 200, url
        assert len(served.content) > 0, url
    scripts = [u for u in urls if u.endswith(".js")]
    assert all(docs_client.get(u).headers["content-type"].startswith("text/javascript") for u in scripts)
    assert (
        docs_client.get(next(u for u in urls if u.endswith("openapi.json")))
        .json()["openapi"]
        .startswith("3.1")
    )


def test_swagger_ui_is_version_5_which_reads_openapi_3_1(docs_client: TestClient) -> None:
    bundle = docs_client.get("/docs/static/swagger-ui-bundle.js").text
    assert re.search(r'"5\.\d+\.\d+"', bundle)
    assert '"validatorUrl": null' in docs_client.get("/docs").text  # no badge fetched from swagger.io


def test_redoc_shows_its_logo_from_here_not_from_its_cdn(docs_client: TestClient) -> None:
    bundle = docs_client.get("/docs/static/redoc.js").text
    assert "cdn.redoc.ly" not in bundle
    assert "/docs/static/favicon.png" in bundle
