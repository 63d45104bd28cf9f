"""Record a live SNMP agent as an snmpsim ``.snmprec`` (``otaudit sim snmp --record HOST``).

The ``.snmprec`` file is the contract with ``simulators/snmp`` (``--snmprec FILE``). The
walk goes through the probe's own session (reads only: GET, GETNEXT, GETBULK), with the
configured credential and the probe's pacing, bounded in OIDs and time. It covers mib-2
(system, interfaces, ENTITY, TCP/UDP, UPS-MIB, ...) and the vendors' enterprises subtree,
not the SNMP framework MIBs (communities, USM, VACM). A value that contains a configured
secret is written redacted. What the walk cannot carry: the agent's access configuration
(versions, communities, v3 users): the replay agent serves the values over v1/v2c.
"""

from __future__ import annotations

from pathlib import Path

from otaudit.probes.base import ProbeContext, ProbeError, ProbeTarget
from otaudit.probes.snmp.client import NoAnswer, SnmpError, SnmpSession
from otaudit.probes.snmp.options import SnmpOptions
from otaudit.probes.snmp.parse import Val, VarBind, oid_str
from otaudit.probes.snmp.probe import credentials

ROOTS = ("1.3.6.1.2.1", "1.3.6.1.4.1")
MAX_OIDS = 100_000  # per subtree
WALK_SECONDS = 600.0
TAGS = {"Integer": 2, "OctetString": 4, "Null": 5, "ObjectIdentifier": 6, "IpAddress": 64,
        "Counter32": 65, "Gauge32": 66, "TimeTicks": 67, "Opaque": 68, "Counter64": 70}


async def record(target: ProbeTarget, ctx: ProbeContext, out: Path) -> list[Path]:
    """Walk the agent and write ``out`` (.snmprec); return the files written."""
    options = target.options
    if not isinstance(options, SnmpOptions):
        raise ProbeError(f"snmp recorder got {type(options).__name__} options")
    credential = credentials(options, ctx)[options.version]
    rows: list[VarBind] = []
    async with SnmpSession(target.host, target.port, timeout=min(options.request_timeout,
                                                                   ctx.timeout),
                           retries=options.retries, pace=ctx.pace, sent=ctx.sent,
                           max_repetitions=options.max_repetitions) as session:
        for root in ROOTS:
            try:
                result = await session.walk(credential, root, max_oids=MAX_OIDS,
                                            deadline=WALK_SECONDS)
            except NoAnswer as exc:
                raise ProbeError(f"walk of {root}: no answer ({exc})") from None
            except SnmpError as exc:
                raise ProbeError(f"walk of {root}: {exc}") from None
            if result.stop in ("bound", "time", "non_increasing"):
                raise ProbeError(f"walk of {root} stopped ({result.stop}) after "
                                 f"{len(result.rows)} OIDs: the recording would be partial")
            rows.extend(result.rows)
    if not rows:
        raise ProbeError("the agent answered no OID under mib-2 or enterprises")
    lines = [line for oid, val in rows if (line := snmprec_line(oid_str(oid), val, ctx))]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(out)
    return [out]


def snmprec_line(oid: str, val: Val, ctx: ProbeContext) -> str | None:
    """``oid|tag|value`` (hex form ``4x`` for strings that are not plain one-line text)."""
    tag = TAGS.get(val.type)
    if tag is None:
        return None  # noSuchObject & co.: nothing to replay
    if val.type in ("OctetString", "Opaque"):
        raw = val.value if isinstance(val.value, bytes) else b""
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None:
            redacted = ctx.redact(text)
            if redacted != text:
                return f"{oid}|{tag}|{redacted}"
        if text is None or not text.isprintable() or val.type == "Opaque":
            return f"{oid}|{tag}x|{raw.hex()}"
        return f"{oid}|{tag}|{text}"
    if val.type == "Null":
        return f"{oid}|{tag}|"
    return f"{oid}|{tag}|{val.value}"
