"""Writes the API's OpenAPI document: ``python -m otaudit.server.api.openapi docs/openapi.json``
(``make openapi``). tests/api checks that the checked-in file matches the served one."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

REGENERATE = ".venv/bin/python -m otaudit.server.api.openapi docs/openapi.json"


def document() -> dict[str, Any]:
    """The OpenAPI document of ``create_app`` (built on a throwaway SQLite database)."""
    from otaudit.server.api import create_app
    from otaudit.server.db import open_database

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'openapi.db'}"
        open_database(url, create=True).dispose()
        app = create_app(url)
        try:
            return app.openapi()
        finally:
            app.state.engine.dispose()


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(f"usage: {REGENERATE}", file=sys.stderr)
        return 2
    Path(argv[0]).write_text(render(document()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
