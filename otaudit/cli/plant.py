"""``otaudit sim plant --devices N [--seed S] [--out DIR]``: a simulated plant of N devices.

Starts the devices of ``otaudit.simulators.fleet`` (each on its own 127.0.x.y address,
on its protocol's standard port when this process may bind it) in one worker process
per core, writes ``DIR/inventory.yaml`` and ``DIR/plant.env`` and runs until Ctrl-C or
SIGTERM (or ``--duration`` seconds). On exit the workers dump every device's request
log to ``DIR/requests/`` and the politeness of whoever audited the plant is checked.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import typer

from otaudit.errors import InputError

OPTIONS = {
    "devices": "number of devices (1..10000), required",
    "seed": "layout seed (default 1): same seed, same plant",
    "out": "output folder (default ./otaudit-plant)",
    "workers": "worker processes (default: one per core)",
    "ports": "standard (502/102/161/22), high (5020/10102/10161/10022) or any",
    "protocols": "comma-separated subset of modbus,s7,snmp,ssh (default: all)",
    "subnet": "first address 127.0.SUBNET.1 (default 1; 1..255)",
    "no-faults": "leave out the offline, silent, slow and garbage devices",
    "duration": "stop after this many seconds (default: run until Ctrl-C / SIGTERM)",
    "min-interval": "minimum request interval the politeness check expects (default: "
                    "OTAUDIT_MIN_REQUEST_INTERVAL)",
}


def _number(flags: dict[str, Any], name: str, default: Any, kind: type) -> Any:
    value = flags.get(name, default)
    if value is None:
        return None
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise InputError("command line", [f"--{name}: expected a number, got {value!r}"]
                         ) from None


def plant(flags: dict[str, Any]) -> None:
    """Run the plant described by the ``--name value`` flags (see ``OPTIONS``)."""
    from otaudit.cli.progress import progress
    from otaudit.settings import get_settings
    from otaudit.simulators.fleet import Fleet, generate_layout
    from otaudit.simulators.fleet.layout import default_port_mode
    from otaudit.simulators.fleet.politeness import check_politeness

    unknown = sorted(set(flags) - set(OPTIONS))
    if unknown or "devices" not in flags:
        problems = [f"unknown option --{name}" for name in unknown]
        if "devices" not in flags:
            problems.append("--devices N is required")
        usage = "options: " + "; ".join(f"--{k}: {v}" for k, v in OPTIONS.items())
        raise InputError("otaudit sim plant", [*problems, usage])
    protocols = ({p.strip() for p in str(flags["protocols"]).split(",") if p.strip()}
                 if "protocols" in flags else None)
    try:
        layout = generate_layout(
            _number(flags, "devices", None, int), _number(flags, "seed", 1, int),
            protocols=protocols, port_mode=str(flags.get("ports") or default_port_mode()),
            faults=not flags.get("no-faults"), subnet=_number(flags, "subnet", 1, int))
    except ValueError as exc:
        raise InputError("otaudit sim plant", [str(exc)]) from None
    out = Path(str(flags.get("out") or "otaudit-plant"))
    duration = _number(flags, "duration", None, float)
    interval = _number(flags, "min-interval", None, float)
    if interval is None:
        interval = get_settings().min_request_interval

    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    fleet = Fleet(layout, out, workers=_number(flags, "workers", None, int))
    try:
        typer.echo(f"starting {len(layout.devices)} devices in {fleet.workers} worker "
                   f"processes ...", err=True)
        listening = sum(1 for d in layout.devices if d.runs != "offline")
        with progress("devices listening", total=listening) as steps:
            fleet.start(on_started=steps.advance)
        paths = fleet.write_outputs()
        _describe(layout, fleet, paths)
        deadline = time.monotonic() + duration if duration else None
        while not stop.wait(0.5):
            if deadline and time.monotonic() >= deadline:
                break
            if not fleet.alive():
                typer.echo("error: a worker process ended; stopping the plant", err=True)
                break
    finally:
        typer.echo("stopping the plant ...", err=True)
        fleet.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    report = check_politeness(fleet.log_dir, interval)
    typer.echo(f"request logs: {fleet.log_dir}")
    typer.echo(report.summary())


def _describe(layout: Any, fleet: Any, paths: dict[str, Path]) -> None:
    kinds = Counter(f"{d.kind}/{d.protocol}" for d in layout.devices)
    faulty = Counter(d.variant for d in layout.devices
                     if d.runs != "profile" or d.sim_options.get("behaviour"))
    first, last = layout.devices[0].host, layout.devices[-1].host
    typer.echo(f"plant {layout.site} (seed {layout.seed}): {len(layout.devices)} devices on "
               f"{first} .. {last}, ready in {fleet.ready_seconds:.1f} s, worker pids "
               f"{' '.join(map(str, fleet.pids))}")
    typer.echo("  " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())))
    if faulty:
        typer.echo("  misbehaving: " + ", ".join(f"{n} {k}" for k, n in sorted(faulty.items())))
    typer.echo(f"inventory: {paths['inventory']}")
    env = fleet.env()
    if env:
        typer.echo(f"export before auditing (credentials the inventory refers to, SSH "
                   f"known-hosts file of this plant; also in {paths['env']}):")
        for name, value in env.items():
            typer.echo(f"  export {name}={value}")
    typer.echo(f"audit it: otaudit collector run --inventory {paths['inventory']} --once")
    typer.echo("ready; Ctrl-C or SIGTERM stops the plant", err=True)
