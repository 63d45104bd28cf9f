"""``otaudit sim PROTOCOL --record HOST --out PATH``: record a live device for replay.

The recorder of each protocol lives with its probe (``probes/<proto>/record.py``) and
reads the device through the probe's own read-only client and guard, paced like a probe
run; what it writes is what ``otaudit sim PROTOCOL`` replays. Credentials are given as
for ``otaudit probe`` (secret references); they are never written to the recording.
"""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError

from otaudit.errors import ExitCode, InputError, pydantic_problems
from otaudit.observation import AssetRef
from otaudit.probes import UnknownProbe, probe_class
from otaudit.probes.base import ProbeContext, ProbeError, ProbeTarget

RECORDERS: dict[str, str] = {
    "s7": "otaudit.probes.s7.record:record",
    "snmp": "otaudit.probes.snmp.record:record",
    "ssh": "otaudit.probes.ssh.record:record",
}
DEFAULT_OUT = {"s7": "{host}-s7.yaml", "snmp": "{host}.snmprec", "ssh": "{host}-ssh"}
EXIT_FAILED = ExitCode.FOUND  # like `otaudit probe`: the device could not be fully read
RECORD_SECONDS = 1800.0  # a whole paced SNMP walk of a large agent fits


def record_device(protocol: str, host: str, flags: dict[str, Any], *, port: int | None,
                  timeout: float = 5.0, interval: float | None = None) -> list[Path]:
    """Record ``host`` with the recorder of ``protocol``; return the files written.

    ``flags`` are the probe's options plus ``--out PATH`` (default: named after the host).
    """
    flags = dict(flags)
    out = Path(str(flags.pop("out"))) if isinstance(flags.get("out"), str) else None
    if protocol not in RECORDERS:
        raise typer.BadParameter(f"--record: no recorder for {protocol!r}; "
                                 f"known: {', '.join(RECORDERS)}")
    try:
        cls = probe_class(protocol)
        options = cls.Options.from_cli(flags)
    except UnknownProbe as exc:
        raise typer.BadParameter(str(exc.args[0])) from None
    except ValidationError as exc:
        raise InputError("command line", pydantic_problems(exc)) from None
    module, _, attr = RECORDERS[protocol].partition(":")
    recorder = getattr(importlib.import_module(module), attr)
    target = ProbeTarget(asset=AssetRef(id=host, kind=cls.default_kind, zone="ad-hoc"),
                         host=host, port=port or cls.default_port, options=options)
    path = out or Path(DEFAULT_OUT[protocol].format(host=host.replace(":", "_")))
    if interval is None:
        from otaudit.settings import get_settings

        interval = get_settings().min_request_interval
    ctx = ProbeContext(timeout=timeout, min_interval=interval)

    async def run() -> list[Path]:
        async with asyncio.timeout(RECORD_SECONDS):
            return await recorder(target, ctx, path)

    try:
        written = asyncio.run(run())
    except (ProbeError, OSError, TimeoutError) as exc:
        typer.echo(f"error: recording {protocol} {target.endpoint} failed: "
                   f"{ctx.redact(str(exc)) or type(exc).__name__}", err=True)
        raise typer.Exit(EXIT_FAILED) from None
    for file in written:
        typer.echo(f"recorded {protocol} {target.endpoint} -> {file}", err=True)
    return written
