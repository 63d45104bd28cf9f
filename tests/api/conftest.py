"""An API on a real database (SQLite and PostgreSQL) holding two sites with the same asset
id, and users/tokens of each role at each site (``support.api``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from support.api import Api, seed


@pytest.fixture
def api(database_url: str) -> Iterator[Api]:
    from otaudit.server.api import create_app

    tokens = seed(database_url)
    app = create_app(database_url)
    with TestClient(app) as client:
        yield Api(client, database_url, tokens)
    app.state.engine.dispose()
