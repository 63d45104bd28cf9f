"""Entry point of the ``otaudit`` console script."""

from __future__ import annotations

import logging
import sys

import typer

from otaudit import __version__
from otaudit.cli import advisories as advisories_cmd
from otaudit.cli import baseline as baseline_cmd
from otaudit.cli import collector as collector_cmd
from otaudit.cli import demo as demo_cmd
from otaudit.cli import keys as keys_cmd
from otaudit.cli import probe as probe_cmd
from otaudit.cli import server as server_cmd
from otaudit.cli import sim as sim_cmd
from otaudit.errors import InputError

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="otaudit: read-only auditor of OT assets for IEC 62443.")
_EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}

app.command("probe", context_settings=_EXTRA)(probe_cmd.probe)
app.command("probes")(probe_cmd.probes)
app.command("sim", context_settings=_EXTRA)(sim_cmd.sim)
app.add_typer(collector_cmd.collector_app, name="collector")
app.add_typer(server_cmd.server_app, name="server")
app.add_typer(advisories_cmd.advisories_app, name="advisories")
app.add_typer(advisories_cmd.patch_app, name="patch")
app.add_typer(keys_cmd.keys_app, name="keys")
app.command("report")(server_cmd.report)
app.command("demo")(demo_cmd.demo)
app.add_typer(baseline_cmd.baseline_app, name="baseline")
app.command("gap")(baseline_cmd.gap)


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="debug logging"),
          version: bool = typer.Option(False, "--version", help="print the version")) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if version:
        typer.echo(__version__)
        raise typer.Exit()


def main() -> None:
    try:
        app()
    except InputError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
