"""``otaudit probe PROTOCOL HOST``: read one device once and print the observation.

One subcommand per registered probe. Requests are paced like the collector's
(``--min-interval``, default ``OTAUDIT_MIN_REQUEST_INTERVAL``) on the one connection the
probe opens. Exit codes: 0 the device was fully read, 1 it was not (the status says why),
2 bad options.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable

import typer
from pydantic import ValidationError

from otaudit.cli.flags import parse_extra_flags
from otaudit.cli.lazyhelp import lazy_epilog_command, option_lines
from otaudit.errors import ExitCode, InputError, pydantic_problems
from otaudit.observation import AssetRef, Observation, ProbeStatus
from otaudit.probes import REGISTRY, probe_class

_EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}

probe_app = typer.Typer(
    no_args_is_help=True, add_completion=False,
    help="Read one device once (read-only, paced, publishes nothing). "
         "`otaudit probe PROTOCOL --help` lists the protocol's options.")


def probe_options_help(protocol: str) -> str:
    cls = probe_class(protocol)
    options = {"--" + field.replace("_", "-"): info.description or ""
               for field, info in cls.Options.model_fields.items()}
    return option_lines(f"{protocol} options (default port {cls.default_port}):", options)


def _probe_command(protocol: str) -> Callable[..., None]:
    def command(
        ctx: typer.Context,
        host: str = typer.Argument(..., help="device address"),
        port: int | None = typer.Option(None, help="port (default: the protocol's own)"),
        json_out: bool = typer.Option(False, "--json", help="print the observation as JSON"),
        timeout: float = typer.Option(10.0, min=0.1,
                                      help="deadline for the whole probe run, seconds"),
        min_interval: float | None = typer.Option(
            None, "--min-interval", min=0.0,
            help="least seconds between two requests to the device (default: "
                 "OTAUDIT_MIN_REQUEST_INTERVAL, as the collector)"),
    ) -> None:
        run(protocol, host, list(ctx.args), port=port, json_out=json_out, timeout=timeout,
            min_interval=min_interval)

    command.__doc__ = (f"Read one {protocol} device once. Protocol options follow as "
                       f"--name value (listed below).")
    return command


for _name in REGISTRY:
    probe_app.command(_name, context_settings=_EXTRA,
                      cls=lazy_epilog_command(lambda n=_name: probe_options_help(n)))(
        _probe_command(_name))


def run(protocol: str, host: str, args: list[str], *, port: int | None, json_out: bool,
        timeout: float, min_interval: float | None) -> None:
    from otaudit.probes.base import ProbeTarget
    from otaudit.probes.runner import run_probe
    from otaudit.settings import get_settings

    cls = probe_class(protocol)
    try:
        options = cls.Options.from_cli(parse_extra_flags(args))
    except ValidationError as exc:
        raise InputError("command line", pydantic_problems(exc),
                         hint=f"`otaudit probe {protocol} --help` lists the options") from None
    target = ProbeTarget(
        asset=AssetRef(id=host, kind=cls.default_kind, zone="ad-hoc"),
        host=host, port=port or cls.default_port, options=options,
    )
    interval = get_settings().min_request_interval if min_interval is None else min_interval
    obs = asyncio.run(run_probe(cls(), target, collector_id="cli", site="ad-hoc",
                                deadline=timeout, min_interval=interval))
    if json_out:
        sys.stdout.write(obs.model_dump_json(indent=2) + "\n")
    else:
        print_observation(obs)
    if obs.status is not ProbeStatus.OK:
        raise typer.Exit(ExitCode.FOUND)


def print_observation(obs: Observation) -> None:
    reason = f" — {obs.reason}" if obs.reason else ""
    typer.echo(f"{obs.probe} {obs.endpoint}: {obs.status.value}{reason}")
    width = max((len(p) for p in [*obs.facts, *obs.unknown]), default=10)
    for path, fact in sorted(obs.facts.items()):
        typer.echo(f"  {path:<{width}}  {fact.value!r}")
    for path, why in sorted(obs.unknown.items()):
        typer.echo(f"  {path:<{width}}  unknown ({why})")


def probes() -> None:
    """List the protocols and the options each accepts."""
    for name in REGISTRY:
        try:
            typer.echo(probe_options_help(name).replace("\n\n", "\n  "))
        except ImportError as exc:
            typer.echo(f"{name}: not available ({exc})")
