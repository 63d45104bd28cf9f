"""``otaudit api`` (the HTTP API alone) and the API half of ``otaudit server run --http``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from otaudit.cli.common import baseline_option, db_option, stop_on_signals
from otaudit.errors import InputError
from otaudit.settings import get_settings

HTTP_HELP = "serve the HTTP API on HOST:PORT (e.g. 127.0.0.1:8080; TLS: a reverse proxy)"


def parse_http(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6)."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError("--http", [f"{text!r}: expected HOST:PORT like 127.0.0.1:8080"])
    return host, int(port)


def http_server(app: Any, host: str, port: int) -> Any:
    """A uvicorn server that leaves signals to its caller (one stop for API and ingest)."""
    import uvicorn

    class _Embedded(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    # X-Forwarded-For is believed from the reverse proxy on this host only (login limit)
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False,
                            server_header=False, lifespan="off", proxy_headers=True,
                            forwarded_allow_ips="127.0.0.1")
    return _Embedded(config)


async def serve_until(server: Any, stop: asyncio.Event) -> None:
    """Run ``server`` until ``stop`` is set; an address in use is a StateError."""
    from otaudit.errors import StateError

    async def watch() -> None:
        await stop.wait()
        server.should_exit = True

    watcher = asyncio.create_task(watch())
    try:
        await server.serve()
    except SystemExit:  # uvicorn exits when it cannot bind
        raise StateError(f"cannot listen on {server.config.host}:{server.config.port} "
                         "(in use, or not an address of this host)") from None
    finally:
        watcher.cancel()
    if not server.started:
        raise StateError(f"cannot listen on {server.config.host}:{server.config.port}")


def api(db: str | None = db_option(),
        http: str = typer.Option("127.0.0.1:8080", "--http", help=HTTP_HELP),
        baseline: Path | None = baseline_option()) -> None:
    """Serve the HTTP API only (no MQTT ingest), until SIGTERM/Ctrl-C."""
    from otaudit.server.api import create_app

    host, port = parse_http(http)
    settings = get_settings(database_url=db)
    app = create_app(settings.database_url, baseline)

    async def main() -> None:
        stop = stop_on_signals()
        typer.echo(f"api: http://{host}:{port}/api/v1 (healthz: /healthz; web console: "
                   "/console/)", err=True)
        await serve_until(http_server(app, host, port), stop)

    asyncio.run(main())
    app.state.engine.dispose()
