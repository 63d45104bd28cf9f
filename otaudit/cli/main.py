"""Entry point of the ``otaudit`` console script.

Every command ends with an exit code of ``otaudit.errors.ExitCode`` (README: "Exit codes").
A problem the user can fix (``OtauditError``) is one message on stderr, never a traceback;
``-v`` or ``OTAUDIT_DEBUG=1`` adds the traceback.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from otaudit import __version__
from otaudit.cli.progress import set_quiet
from otaudit.errors import ExitCode, OtauditError

DEBUG_ENV = "OTAUDIT_DEBUG"
_debug = False


class OtauditGroup(TyperGroup):
    """The root command: what a command raises ends here with its documented exit code
    (also under typer's test runner, which bypasses ``main``)."""

    def invoke(self, ctx: typer.Context) -> object:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, TyperException):
            raise  # typer's own endings: --help, usage errors, typer.Exit(code)
        except OtauditError as exc:
            _traceback_if_asked()
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(int(exc.exit_code)) from None
        except Exception as exc:  # a bug: say so briefly, the traceback on request
            _traceback_if_asked()
            typer.echo(f"error: internal error: {type(exc).__name__}: {exc}\n  this is a bug "
                       f"in otaudit; run again with -v (or {DEBUG_ENV}=1) for the traceback "
                       f"and report it", err=True)
            raise typer.Exit(ExitCode.INTERNAL) from None


def _new_app() -> typer.Typer:
    new = typer.Typer(cls=OtauditGroup, no_args_is_help=True, add_completion=False,
                      pretty_exceptions_enable=False,
                      help="otaudit: read-only auditor of OT assets for IEC 62443.")
    new.callback()(_root)
    return new


def _collector_app() -> typer.Typer:
    """The root with the ``collector`` commands only: what ``otaudit collector ...`` runs.
    A collector on a small gateway then does not import (nor build the click commands of)
    the server, advisory, report, simulator and probe commands (about 1.4 MiB resident)."""
    from otaudit.cli import collector as collector_cmd

    new = _new_app()
    new.add_typer(collector_cmd.collector_app, name="collector")
    return new


def _full_app() -> typer.Typer:
    from otaudit.cli import accounts as accounts_cmd
    from otaudit.cli import advisories as advisories_cmd
    from otaudit.cli import api as api_cmd
    from otaudit.cli import baseline as baseline_cmd
    from otaudit.cli import collector as collector_cmd
    from otaudit.cli import demo as demo_cmd
    from otaudit.cli import discover as discover_cmd
    from otaudit.cli import drift as drift_cmd
    from otaudit.cli import evidence as evidence_cmd
    from otaudit.cli import inventory as inventory_cmd
    from otaudit.cli import keys as keys_cmd
    from otaudit.cli import probe as probe_cmd
    from otaudit.cli import server as server_cmd
    from otaudit.cli import sim as sim_cmd

    new = _new_app()
    new.add_typer(probe_cmd.probe_app, name="probe")
    new.command("probes")(probe_cmd.probes)
    new.add_typer(sim_cmd.sim_app, name="sim")
    new.add_typer(collector_cmd.collector_app, name="collector")
    server_cmd.server_app.add_typer(accounts_cmd.user_app, name="user")
    server_cmd.server_app.add_typer(accounts_cmd.token_app, name="token")
    new.add_typer(server_cmd.server_app, name="server")
    new.command("api")(api_cmd.api)
    new.add_typer(advisories_cmd.advisories_app, name="advisories")
    new.add_typer(advisories_cmd.patch_app, name="patch")
    new.add_typer(keys_cmd.keys_app, name="keys")
    new.add_typer(inventory_cmd.inventory_app, name="inventory")
    new.add_typer(evidence_cmd.evidence_app, name="evidence")
    new.command("report")(server_cmd.report)
    new.command("demo")(demo_cmd.demo)
    new.command("discover")(discover_cmd.discover)
    new.add_typer(baseline_cmd.baseline_app, name="baseline")
    new.command("gap")(baseline_cmd.gap)
    new.command("drift")(drift_cmd.drift)
    return new


_app: typer.Typer | None = None


def __getattr__(name: str) -> typer.Typer:
    """``app``: the whole command line, built on first use (tests, ``python -m``)."""
    global _app
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _app is None:
        _app = _full_app()
    return _app


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"otaudit {__version__}")
        raise typer.Exit()


def _root(verbose: bool = typer.Option(False, "--verbose", "-v",
                                       help=f"debug logging and tracebacks (or {DEBUG_ENV}=1)"),
          quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress display"),
          version: bool = typer.Option(False, "--version", is_eager=True,
                                       callback=_show_version, help="print the version")) -> None:
    global _debug
    _debug = verbose or debug_from_env()
    set_quiet(quiet)
    logging.basicConfig(level=logging.DEBUG if _debug else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def debug_from_env() -> bool:
    return os.environ.get(DEBUG_ENV, "").lower() in ("1", "true", "yes", "on")


def command_word(argv: list[str]) -> str | None:
    """The command named on a command line (the root options before it are all flags)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def main() -> None:
    """Run the CLI. Typer ends usage errors with 2 and Ctrl-C with 130; ``OtauditGroup``
    maps what a command raises to its exit code."""
    if command_word(sys.argv[1:]) == "collector":
        _collector_app()()
    else:
        __getattr__("app")()


def _traceback_if_asked() -> None:
    if _debug or debug_from_env():
        traceback.print_exc()


if __name__ == "__main__":
    main()
