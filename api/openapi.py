"""Write the OpenAPI document of the app: ``python -m api.openapi`` → ``openapi/openapi.json``.

GENERATED file; a test fails when it drifts from the code. The app is built against an in-memory
SQLite URL: building the document touches no database.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from api.main import create_app
from pathway.settings import Settings

TARGET = Path(__file__).parents[1] / "openapi" / "openapi.json"


def document() -> dict[str, Any]:
    app = create_app(Settings(database_url="sqlite://"))
    spec: dict[str, Any] = app.openapi()
    app.state.engine.dispose()
    return spec


def render() -> str:
    return json.dumps(document(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def main() -> int:
    TARGET.write_text(render(), encoding="utf-8")
    print(f"wrote {TARGET}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
