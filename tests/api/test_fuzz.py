"""Fuzz the API from its own OpenAPI document: no input, however odd, gets a 5xx.

Bounded (40 examples per operation) so it runs in the normal suite. The app under test uses its
own SQLite file, created when this module is collected.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.generation.case import Case

from api.main import create_app
from pathway.access.permissions import Role
from pathway.clinical.clock import FixedClock
from pathway.settings import Settings
from pathway.store.db import migrate
from tests.api.conftest import new_key
from tests.builders import AS_OF

_DATABASE = f"sqlite:///{Path(tempfile.mkdtemp(prefix='pathway-fuzz-')) / 'pathway.db'}"
migrate(_DATABASE)
app = create_app(Settings(database_url=_DATABASE), clock=FixedClock(AS_OF))
_ADMIN = {"Authorization": f"Bearer {new_key(app, Role.ADMIN)}"}
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_server_error(case: Case[Any]) -> None:
    response = case.call(headers=_ADMIN)
    assert response.status_code < 500, (case.method, case.formatted_path, response.text)
