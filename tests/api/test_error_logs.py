"""Logs never carry patient identifiers: a database error is logged by constraint or type only."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy.exc import IntegrityError, OperationalError

from api import errors


class _Diag:
    constraint_name = "uq_patient_source_system_external_id"


class _UniqueViolation(Exception):
    diag = _Diag()


def _handle(exception: Exception) -> Any:
    app = FastAPI()
    errors.install(app)
    handler = app.exception_handlers[type(exception)]
    return asyncio.run(handler(None, exception))  # type: ignore[arg-type]


def test_a_write_conflict_is_logged_without_the_rows_values(caplog: pytest.LogCaptureFixture) -> None:
    orig = _UniqueViolation("Key (source_system, external_id)=(his, 370283199001011234) already exists.")
    caplog.set_level("INFO", logger="pathway.api")
    response = _handle(IntegrityError("INSERT …", {"external_id": "370283199001011234"}, orig))
    assert response.status_code == 409
    assert "370283199001011234" not in caplog.text
    assert "uq_patient_source_system_external_id" in caplog.text


def test_an_unreachable_database_is_logged_by_kind_only(caplog: pytest.LogCaptureFixture) -> None:
    orig = ConnectionError("connection to server failed for user 王小明")
    caplog.set_level("WARNING", logger="pathway.api")
    response = _handle(OperationalError("SELECT …", {"name": "王小明"}, orig))
    assert response.status_code == 503
    assert "王小明" not in caplog.text
