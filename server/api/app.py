"""The FastAPI application: ``create_app(database_url, baseline_dir=None)``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from otaudit.errors import InputError
from otaudit.server.api.routes import router
from otaudit.server.api.security import LoginLimiter, SecurityHeaders, current_principal
from otaudit.server.console import console_app
from otaudit.server.presence import Presence
from otaudit.server.services.accounts import Principal

OPENAPI_PATH = "/api/v1/openapi.json"
CONSOLE_PATH = "/console"


def create_app(database_url: str, baseline_dir: Path | None = None, *,
               exceptions_file: Path | None = None, attestations_file: Path | None = None,
               signing_key_file: Path | None = None,
               login_limiter: LoginLimiter | None = None,
               presence: Presence | None = None) -> FastAPI:
    """The API on an existing, migrated database (StateError otherwise, as the CLI's read
    commands). Policy files and the signing key default to the settings. ``presence``: the
    subscribing server's (``server run --http``), for the collectors' last-seen."""
    from otaudit import __version__
    from otaudit.server.baseline import load_baseline
    from otaudit.server.db import open_database, session_factory
    from otaudit.settings import get_settings

    settings = get_settings(database_url=database_url)
    engine = open_database(database_url)
    app = FastAPI(title="otaudit API", version=__version__, openapi_url=None, docs_url=None,
                  redoc_url=None, description="IEC 62443 audit data per site. Every route "
                  "but /healthz and /api/v1/login needs a bearer token.")
    state = app.state
    state.engine, state.sessions = engine, session_factory(engine)
    state.baseline = load_baseline(overlay=baseline_dir or settings.baseline_dir)
    state.exceptions_file = exceptions_file or settings.exceptions_file
    state.attestations_file = attestations_file or settings.attestations_file
    key = signing_key_file or settings.server_signing_key_file
    state.signing_key_file = Path(key) if key else None
    state.login_limiter = login_limiter or LoginLimiter()
    state.presence = presence  # else the settings' heartbeat decides when one is silent
    state.heartbeat = (settings.heartbeat_interval, settings.alert_collector_silent_intervals)
    app.add_middleware(SecurityHeaders)
    app.router.routes.extend(router.routes)  # flat: app.routes lists every route (role matrix)
    # the console is a mounted sub-app: its pages have their own role matrix (tests/console)
    app.mount(CONSOLE_PATH, console_app(state), name="console")

    @app.exception_handler(InputError)
    async def _bad_input(_: Request, exc: InputError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, Any]:
        """Up, and the database answers (no authentication)."""
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        return {"status": "ok"}

    @app.get(OPENAPI_PATH, tags=["health"], include_in_schema=False)
    def openapi(_: Principal = Depends(current_principal)) -> dict[str, Any]:
        """The OpenAPI document (docs/openapi.json is the same, checked in)."""
        return app.openapi()

    return app
