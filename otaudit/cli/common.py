"""What several commands share: the database they read, the baseline with a site overlay."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    import sqlalchemy as sa

    from otaudit.server.baseline.loader import Baseline
    from otaudit.settings import Settings

DB_HELP = "database URL (default: OTAUDIT_DATABASE_URL)"
BASELINE_HELP = ("a site's own checks/controls/tests merged over the bundled baseline "
                 "(default: OTAUDIT_BASELINE_DIR; docs/extending.md)")


def db_option() -> str | None:
    return typer.Option(None, "--db", help=DB_HELP)


def baseline_option() -> Path | None:
    return typer.Option(None, "--baseline", help=BASELINE_HELP)


def database(settings: Settings, db: str | None, *, create: bool = False) -> sa.Engine:
    """The engine of ``--db`` or the settings' database; read commands never create one."""
    from otaudit.server.db import open_database

    return open_database(db or settings.database_url, create=create)


def site_baseline(settings: Settings, overlay: Path | None) -> Baseline:
    """The bundled baseline with the site overlay (``--baseline`` or OTAUDIT_BASELINE_DIR);
    every problem of either is an InputError naming file and line."""
    from otaudit.server.baseline import load_baseline

    return load_baseline(overlay=overlay or settings.baseline_dir)


def site_option() -> str | None:
    return typer.Option(None, "--site", help="the site (default: the database's only site)")


def choose_site(session: Any, site: str | None) -> str | None:
    """``site`` if the database knows it, else the database's only site (None when empty);
    an unknown site, or none named when there are several, is an InputError listing them."""
    from otaudit.errors import InputError, UnknownName
    from otaudit.server import store

    known = store.sites(session)
    if site is not None:
        if site not in known:
            raise UnknownName("site", site, tuple(known), source="--site")
        return site
    if len(known) > 1:
        raise InputError("--site", [f"the database holds several sites "
                                    f"({', '.join(known)}): name one with --site"])
    return known[0] if known else None



def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM (in the running loop): the one way commands that
    serve until stopped (server, api, sim, discover, demo --serve) learn to stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # not on every platform
            loop.add_signal_handler(sig, stop.set)
    return stop
