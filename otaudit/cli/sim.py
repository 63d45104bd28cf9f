"""``otaudit sim PROTOCOL``: run one simulated device on a loopback address until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

import typer

from otaudit.cli.flags import parse_extra_flags
from otaudit.simulators import REGISTRY, create_simulator


def sim(
    ctx: typer.Context,
    protocol: str = typer.Argument(..., help=f"one of: {', '.join(REGISTRY)}, or plant"),
    profile: Path | None = typer.Option(None, help="device profile (YAML or folder)"),
    host: str = typer.Option("127.0.0.1", help="loopback address to bind"),
    port: int = typer.Option(0, help="port (0 = any free port)"),
    log: Path | None = typer.Option(None, help="append the request log (JSON lines) here on exit"),
    record: str | None = typer.Option(None, help="record the live device HOST for replay "
                                      "(read-only, paced; --out PATH and probe options follow)"),
) -> None:
    """Run one simulated device. Simulator-specific options follow as --name value.

    ``otaudit sim plant --devices N [--seed S] [--out DIR]`` runs a plant of N devices.
    """
    if protocol == "plant":
        from otaudit.cli.plant import plant

        plant(parse_extra_flags(list(ctx.args)))
        return
    if record is not None:
        from otaudit.cli.record import record_device

        record_device(protocol, record, parse_extra_flags(list(ctx.args)), port=port or None)
        return
    extra = {k.replace("-", "_"): v for k, v in parse_extra_flags(list(ctx.args)).items()}
    device = create_simulator(protocol, profile, host=host, port=port, **extra)
    asyncio.run(_serve(device, log))


async def _serve(device, log: Path | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await device.start()
    typer.echo(f"{device.protocol} simulator listening on {device.host}:{device.port}", err=True)
    try:
        await stop.wait()
    finally:
        await device.stop()
        if log:
            device.log.dump_jsonl(log)
