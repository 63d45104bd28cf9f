"""Conduit verification: which services of an asset in another zone this collector reaches.

The collector knows where it sits (the inventory's ``collector_zone``) and what the
conduits allow into the asset's zone from there; it hands both over as options. The probe
then tries a TCP connect to each port (no payload, closed at once; paced; one at a time)
and compares: a service that answers although no conduit allows it is *unexpected*
(the boundary lets more through than declared), a port a conduit allows that does not
answer is *blocked_expected* (a declared flow that does not work, or no service there).

Only an accepted connection counts as reachable. A refused one (RST) and silence
(timeout, unreachable) both mean no service was reached: a filtering device that rejects
with a TCP reset cannot be told from a closed port, so "closed" never counts as exposure.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from otaudit.facts import FactSpec
from otaudit.observation import AssetKind
from otaudit.probes.base import Probe, ProbeContext, ProbeOptions, ProbeTarget

OPEN, CLOSED, FILTERED = "open", "closed", "filtered"
FACTS: dict[str, FactSpec] = {
    "reach.from_zone": FactSpec("str", "zone the reachability was tested from (the collector's)"),
    "reach.tested": FactSpec(
        "list", "{port, protocol, result (open/closed/filtered), allowed, conduit} per port"),
    "reach.unexpected": FactSpec(
        "list", "{port, protocol} that answered although no conduit allows them from there"),
    "reach.blocked_expected": FactSpec(
        "list", "{port, protocol, conduit, result} a conduit allows that did not answer"),
}


class ReachPort(BaseModel):
    model_config = ConfigDict(extra="forbid")

    port: int = Field(ge=1, le=65535)
    protocol: str
    allowed: bool
    conduit: str | None = None  # the conduit whose flow allows it


class ReachOptions(ProbeOptions):
    from_zone: str = Field(description="the zone the collector sits in")
    ports: list[ReachPort] = Field(default_factory=list, description="ports to try")
    connect_timeout: float = Field(2.0, gt=0, le=30, description="seconds per TCP connect")


class ReachProbe(Probe):
    name = "reach"
    version = "1.0"
    typical_seconds = 0.5
    default_port = 0  # each port comes with the options
    default_kind = AssetKind.HOST
    Options = ReachOptions
    facts = FACTS

    async def collect(self, target: ProbeTarget, ctx: ProbeContext) -> None:
        options = target.options
        assert isinstance(options, ReachOptions)
        rec = ctx.recorder
        tested: list[dict[str, Any]] = []
        eids: list[str] = []
        for entry in options.ports:
            await ctx.pace()
            result, detail = await _connect(target.host, entry.port,
                                            min(options.connect_timeout, ctx.timeout))
            ctx.sent()
            eids.append(rec.evidence_for(
                f"tcp connect {target.host}:{entry.port} ({entry.protocol}) from zone "
                f"{options.from_zone}, no payload", f"{result}: {detail}"))
            tested.append({"port": entry.port, "protocol": entry.protocol, "result": result,
                           "allowed": entry.allowed, "conduit": entry.conduit or ""})
        rec.fact("reach.from_zone", options.from_zone, *eids[:1])
        rec.fact("reach.tested", tested, *eids)
        rec.fact("reach.unexpected", [{"port": t["port"], "protocol": t["protocol"]}
                                      for t in tested if t["result"] == OPEN
                                      and not t["allowed"]], *eids)
        rec.fact("reach.blocked_expected", [
            {"port": t["port"], "protocol": t["protocol"], "conduit": t["conduit"],
             "result": t["result"]} for t in tested if t["allowed"] and t["result"] != OPEN],
            *eids)


async def _connect(host: str, port: int, timeout: float) -> tuple[str, str]:
    """(open|closed|filtered, what happened): a TCP connect, closed at once."""
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        return FILTERED, f"no answer within {timeout:g} s"
    except ConnectionRefusedError:
        return CLOSED, "connection refused (TCP reset)"
    except OSError as exc:
        unreachable = exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EACCES,
                                    errno.EPERM)
        return (FILTERED if unreachable else CLOSED), exc.strerror or str(exc)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return OPEN, "connection accepted, closed at once"
