"""``otaudit demo --serve``: keep the web console up on the demo's database afterwards.

A demo admin user gets a random password, printed once on stdout (never logged or stored
in clear); a server signing key is written beside the database so the console's evidence
package download works.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import typer

from otaudit.cli.common import stop_on_signals

DEMO_USER = "demo-admin"


def demo_login(database_url: str) -> tuple[str, str, list[str]]:
    """A new admin user of every site of the database: (name, password, sites)."""
    from otaudit.server.db import make_engine, session_factory
    from otaudit.server.services import accounts
    from otaudit.server.services import sites as sites_svc

    password = secrets.token_urlsafe(15)
    engine = make_engine(database_url)
    try:
        with session_factory(engine).begin() as session:
            sites = [s["site"] for s in sites_svc.list_sites(session)]
            name = DEMO_USER
            taken = {u["name"] for site in sites for u in accounts.users_of_site(session, site)}
            if name in taken:
                name = f"{DEMO_USER}-{secrets.token_hex(2)}"
            accounts.add_user(session, name, password, "demo")
            for site in sites:
                accounts.grant(session, name, site, "admin", "demo")
    finally:
        engine.dispose()
    return name, password, sites


def serve_console(out: Path, database_url: str, host: str, port: int,
                  examples: Path) -> None:
    """Create the demo login, print the URL and it, serve until SIGINT/SIGTERM."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from otaudit.cli.api import http_server, serve_until
    from otaudit.server.api import create_app
    from otaudit.signing import private_pem

    key = out / "keys" / "console-server.key"
    key.parent.mkdir(parents=True, exist_ok=True)
    if not key.exists():
        key.write_bytes(private_pem(Ed25519PrivateKey.generate()))
        key.chmod(0o600)
    name, password, sites = demo_login(database_url)
    app = create_app(database_url, exceptions_file=examples / "exceptions.yaml",
                     attestations_file=examples / "attestations.yaml", signing_key_file=key)
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"console: http://{shown}:{port}/console/ (sites: {', '.join(sites)})\n"
               f"  user: {name}\n  password: {password}  (shown once; Ctrl-C stops)")

    async def main() -> None:
        stop = stop_on_signals()
        await serve_until(http_server(app, host, port), stop)

    try:
        asyncio.run(main())
    finally:
        app.state.engine.dispose()
