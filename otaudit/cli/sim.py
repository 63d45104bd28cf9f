"""``otaudit sim PROTOCOL``: run one simulated device on a loopback address until Ctrl-C.

One subcommand per registered simulator (its own flags and bundled profiles in its
``--help``), and ``otaudit sim plant`` for a plant of many devices.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import typer

from otaudit.cli.common import stop_on_signals
from otaudit.cli.flags import parse_extra_flags
from otaudit.cli.lazyhelp import lazy_epilog_command, option_lines
from otaudit.simulators import REGISTRY, bundled_profiles, create_simulator, simulator_options

_EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}

sim_app = typer.Typer(
    no_args_is_help=True, add_completion=False,
    help="Simulated devices on loopback addresses (they record every request). "
         "`otaudit sim PROTOCOL --help` lists the simulator's options and profiles.")


def simulator_help(protocol: str) -> str:
    profiles = ", ".join(bundled_profiles(protocol)) or "none"
    return (option_lines(f"{protocol} simulator options:", simulator_options(protocol))
            + f"\n\nBundled profiles (--profile NAME): {profiles}")


def _sim_command(protocol: str) -> Callable[..., None]:
    def command(
        ctx: typer.Context,
        profile: str | None = typer.Option(
            None, help="bundled profile name (listed below) or a profile file/folder"),
        host: str = typer.Option("127.0.0.1", help="loopback address to bind"),
        port: int = typer.Option(0, min=0, max=65535, help="port (0 = any free port)"),
        log: Path | None = typer.Option(
            None, help="append the request log (JSON lines) here on exit"),
        record: str | None = typer.Option(
            None, help="record the live device HOST for replay instead (read-only, paced, "
                       "through the probe's client; --out PATH and probe options follow)"),
    ) -> None:
        if record is not None:
            from otaudit.cli.record import record_device

            record_device(protocol, record, parse_extra_flags(list(ctx.args)),
                          port=port or None)
            return
        extra = {k.replace("-", "_"): v for k, v in parse_extra_flags(list(ctx.args)).items()}
        device = create_simulator(protocol, profile, host=host, port=port, **extra)
        asyncio.run(_serve(device, log))

    command.__doc__ = f"Run one simulated {protocol} device until Ctrl-C / SIGTERM."
    return command


for _name in REGISTRY:
    sim_app.command(_name, context_settings=_EXTRA,
                    cls=lazy_epilog_command(lambda n=_name: simulator_help(n)))(
        _sim_command(_name))


def _plant_help() -> str:
    from otaudit.cli.plant import OPTIONS

    return option_lines("plant options:", {f"--{k}": v for k, v in OPTIONS.items()})


@sim_app.command("plant", context_settings=_EXTRA, cls=lazy_epilog_command(_plant_help))
def plant_command(ctx: typer.Context) -> None:
    """A simulated plant of N devices on 127.x addresses: --devices N [--seed S] [--out DIR]."""
    from otaudit.cli.plant import plant

    plant(parse_extra_flags(list(ctx.args)))


async def _serve(device, log: Path | None) -> None:
    stop = stop_on_signals()
    await device.start()
    typer.echo(f"{device.protocol} simulator listening on {device.host}:{device.port}", err=True)
    reach = getattr(device, "endpoint_options", None)  # e.g. the pin of a generated cert
    if reach:
        typer.echo("endpoint options: " + " ".join(f"{k}={v}" for k, v in reach.items()),
                   err=True)
    try:
        await stop.wait()
    finally:
        await device.stop()
        if log:
            device.log.dump_jsonl(log)
