from __future__ import annotations

import pytest
from pydantic import ValidationError

from pathway.settings import DEFAULT_DATABASE_URL, Settings


def test_the_default_is_the_embedded_sqlite_store_in_shanghai_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PATHWAY_DATABASE_URL", raising=False)
    monkeypatch.delenv("PATHWAY_CLINIC_TIMEZONE", raising=False)
    settings = Settings()
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.tz.key == "Asia/Shanghai"


def test_the_database_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATHWAY_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    assert Settings().database_url.startswith("postgresql://")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        pytest.param("PATHWAY_DATABASE_URL", "mysql://root@localhost/x", id="unsupported-database"),
        pytest.param("PATHWAY_CLINIC_TIMEZONE", "Mars/Olympus", id="unknown-time-zone"),
    ],
)
def test_bad_settings_fail_fast(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError):
        Settings()
