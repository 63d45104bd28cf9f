"""``otaudit probe PROTOCOL HOST``: read one device once and print the observation."""

from __future__ import annotations

import asyncio
import sys

import typer
from pydantic import ValidationError

from otaudit.cli.flags import parse_extra_flags
from otaudit.errors import InputError, pydantic_problems
from otaudit.observation import AssetRef, Observation, ProbeStatus
from otaudit.probes import REGISTRY, UnknownProbe, probe_class
from otaudit.probes.base import ProbeTarget
from otaudit.probes.runner import run_probe

EXIT_NOT_OK = 3


def probe(
    ctx: typer.Context,
    protocol: str = typer.Argument(..., help=f"one of: {', '.join(REGISTRY)}"),
    host: str = typer.Argument(..., help="device address"),
    port: int | None = typer.Option(None, help="port (default: the protocol's standard port)"),
    json_out: bool = typer.Option(False, "--json", help="print the observation as JSON"),
    timeout: float = typer.Option(10.0, help="deadline for the whole probe run, seconds"),
) -> None:
    """Read one device (read-only, publishes nothing). Protocol options follow as --name value;
    `otaudit probes` lists them. Exit code 3 when the device could not be fully read."""
    try:
        cls = probe_class(protocol)
        options = cls.Options.from_cli(parse_extra_flags(list(ctx.args)))
    except UnknownProbe as exc:
        raise typer.BadParameter(str(exc.args[0])) from None
    except ValidationError as exc:
        raise InputError("command line", pydantic_problems(exc)) from None
    target = ProbeTarget(
        asset=AssetRef(id=host, kind=cls.default_kind, zone="ad-hoc"),
        host=host, port=port or cls.default_port, options=options,
    )
    obs = asyncio.run(run_probe(cls(), target, collector_id="cli", site="ad-hoc",
                                deadline=timeout))
    if json_out:
        sys.stdout.write(obs.model_dump_json(indent=2) + "\n")
    else:
        print_observation(obs)
    if obs.status is not ProbeStatus.OK:
        raise typer.Exit(EXIT_NOT_OK)


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
            cls = probe_class(name)
        except ImportError as exc:
            typer.echo(f"{name}: not available ({exc})")
            continue
        typer.echo(f"{name} (default port {cls.default_port})")
        for field, info in cls.Options.model_fields.items():
            flag = "--" + field.replace("_", "-")
            typer.echo(f"  {flag:<24} {info.description or ''}")
