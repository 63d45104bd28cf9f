"""Did the auditor behave? Checks the request logs the plant's workers dumped on exit.

Concurrency is exact: each simulator counts its open connections, so the peak per
device must be 1. Pacing is judged from the time each simulator stamps a request, which
is when its event loop (or S7 thread) handles the bytes, not when they left the client:
on busy cores a stamp comes late, the gap before it grows and the gap after it shrinks
(an S7 thread that waited 1.4 s for the GIL stamped a request 1.4 s late and the next one
10 ms later; the SSH simulator stamps a command only after the channel-open and exec
round trips). A gap shorter than the collector's minimum interval less ``tolerance``
(half the interval by default) is a violation unless the gap before it makes up for it
(together at least two intervals less the tolerance): then the stamp between them was
late. A probe that skips ``pace()`` sends back to back, a loopback round trip apart, and
fails; an isolated early request after a long pause cannot be told from a late stamp.

A connection set-up is one paced operation (the probes call ``pace()`` once before
connecting): its first record counts, its second half does not (S7 setup communication
after the COTP connect, the SSH password check after the user name, an SNMPv3 request
right after the engine discovery pysnmp sends for it). The set-up's stamp comes after the
TCP accept, an S7 thread start or the SSH key exchange, so the gap from it to the first
request is not judged (it still makes up for a late first request). SNMP runs over UDP: a
"connection" in its log is a client source port that stays open, so for UDP devices the
pacing check alone shows that requests never overlap.
"""

from __future__ import annotations

import bisect
import itertools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONTINUATION_KINDS = frozenset({"setup_communication", "auth"})  # after cotp_connect, auth_begin
SETUP_KINDS = frozenset({"cotp_connect", "auth_begin"})  # stamped after accept (+ key exchange)
DATAGRAM_PROTOCOLS = frozenset({"snmp"})
BACKLOG_WINDOW = 0.001  # seconds either side of a stamp (diagnostic only, never a verdict)


def _snmp_discovery(record: dict[str, Any]) -> bool:
    detail = record.get("detail") or {}
    return (record.get("protocol") == "snmp" and detail.get("version") == "v3"
            and not detail.get("user") and not detail.get("varbinds"))


def starts_operation(record: dict[str, Any], previous: dict[str, Any] | None) -> bool:
    """Whether a log record starts a paced operation or continues the one before it (the
    second half of a connection set-up: S7 setup communication after the COTP connect,
    SSH password check after the user name, an SNMPv3 request right after the engine
    discovery pysnmp sent for it from the same port)."""
    if record.get("kind", "") in CONTINUATION_KINDS:
        return False
    return not (previous is not None and _snmp_discovery(previous)
                and not _snmp_discovery(record) and record.get("peer") == previous.get("peer"))


def read_jsonl(paths: Iterable[Path]) -> Iterator[dict[str, Any]]:
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    yield json.loads(line)


@dataclass
class DeviceCheck:
    device: str
    protocol: str
    connections: int
    max_concurrent: int
    requests: int
    sequence: list[tuple[float, bool]]  # (gap to the next operation, judged), as stamped
    starts: list[float] = field(default_factory=list)  # stamp of each operation
    # Records its worker stamped within BACKLOG_WINDOW of the earlier stamp of its shortest
    # judged gap (itself included): many means a backlog handled at once, a late stamp.
    backlog: int = 0

    @property
    def gaps(self) -> list[float]:
        """The judged gaps: not those from a connection set-up to the first request."""
        return [gap for gap, judged in self.sequence if judged]

    @property
    def min_gap(self) -> float | None:
        gaps = self.gaps
        return min(gaps) if gaps else None

    @property
    def crowded(self) -> bool:
        """More than one connection at a time (TCP only, see the module docstring)."""
        return self.protocol not in DATAGRAM_PROTOCOLS and self.max_concurrent > 1

    def hurried(self, interval: float, tolerance: float) -> bool:
        """A gap shorter than ``interval - tolerance`` that a late stamp before it does not
        explain (the gap before it is not long enough to make up for it)."""
        limit, previous = interval - tolerance, None
        for gap, judged in self.sequence:
            if judged and gap < limit and (previous is None or previous + gap < interval + limit):
                return True
            previous = gap
        return False


def _gap_stats(gaps: list[float], interval: float) -> str:
    if not gaps:
        return "no gaps"
    gaps = sorted(gaps)
    short = sum(1 for g in gaps if g < interval)
    return (f"{len(gaps)} gaps, smallest {gaps[0] * 1000:.1f} ms, 1st percentile "
            f"{gaps[len(gaps) // 100] * 1000:.1f} ms, {short} under {interval * 1000:.0f} ms")


@dataclass
class PolitenessReport:
    interval: float
    tolerance: float
    devices: list[DeviceCheck] = field(default_factory=list)

    @property
    def contacted(self) -> list[DeviceCheck]:
        return [d for d in self.devices if d.connections or d.requests]

    @property
    def crowded(self) -> list[DeviceCheck]:
        return [d for d in self.devices if d.crowded]

    @property
    def hurried(self) -> list[DeviceCheck]:
        return [d for d in self.devices if d.hurried(self.interval, self.tolerance)]

    @property
    def ok(self) -> bool:
        return not self.crowded and not self.hurried

    def gaps(self, protocol: str) -> list[float]:
        return [g for d in self.devices if d.protocol == protocol for g in d.gaps]

    def summary(self) -> str:
        peak = max((d.max_concurrent for d in self.devices
                    if d.protocol not in DATAGRAM_PROTOCOLS), default=0)
        text = (f"politeness {'OK' if self.ok else 'VIOLATED'}: "
                f"{len(self.contacted)}/{len(self.devices)} devices contacted; peak concurrent "
                f"TCP connections per device {peak} (limit 1); gaps between requests as "
                f"stamped (limit {(self.interval - self.tolerance) * 1000:.0f} ms unless the "
                f"gap before makes up for it):")
        for protocol in sorted({d.protocol for d in self.devices}):
            text += f" {protocol} {_gap_stats(self.gaps(protocol), self.interval)};"
        text = text.rstrip(";")
        for d in (self.crowded + self.hurried)[:10]:
            gap = "-" if d.min_gap is None else f"{d.min_gap * 1000:.1f} ms"
            text += f"\n  {d.device} ({d.protocol}): {d.max_concurrent} concurrent, min gap {gap}"
            if d.backlog > 1:
                text += (f" (its earlier stamp is one of {d.backlog} its worker took within "
                         f"{BACKLOG_WINDOW * 1000:g} ms: a backlog, so probably stamped late)")
        return text


def device_check(device: str, protocol: str, records: list[dict[str, Any]], *,
                 connections: int, max_concurrent: int) -> DeviceCheck:
    """Judge one device from its request records (``RequestRecord`` as dicts, any order)."""
    logged = sorted(records, key=lambda r: float(r["at"]))
    ops = [(float(r["at"]), r.get("kind") in SETUP_KINDS)
           for r, before in zip(logged, [None, *logged][:len(logged)], strict=True)
           if starts_operation(r, before)]
    return DeviceCheck(device=device, protocol=protocol, connections=connections,
                       max_concurrent=max_concurrent, requests=len(ops),
                       sequence=[(b[0] - a[0], not a[1]) for a, b in itertools.pairwise(ops)],
                       starts=[at for at, _ in ops])


def check_politeness(log_dir: Path, interval: float, tolerance: float | None = None
                     ) -> PolitenessReport:
    """Build the report from ``devices-w*.jsonl`` and ``requests-w*.jsonl`` in ``log_dir``
    (``tolerance`` defaults to half the interval)."""
    records: dict[str, list[dict[str, Any]]] = {}
    worker_of: dict[str, str] = {}
    stamps: dict[str, list[float]] = {}  # per worker, sorted: for the backlog diagnostic
    for path in sorted(log_dir.glob("requests-w*.jsonl")):
        for record in read_jsonl([path]):
            records.setdefault(record["device"], []).append(record)
            worker_of[record["device"]] = path.name
            stamps.setdefault(path.name, []).append(float(record["at"]))
    for values in stamps.values():
        values.sort()
    report = PolitenessReport(interval, interval / 2 if tolerance is None else tolerance)
    for summary in read_jsonl(sorted(log_dir.glob("devices-w*.jsonl"))):
        report.devices.append(device_check(
            summary["device"], summary["protocol"], records.get(summary["device"], []),
            connections=int(summary["connections"]),
            max_concurrent=int(summary["max_concurrent"])))
    for check in report.hurried:
        check.backlog = _backlog(check, stamps.get(worker_of.get(check.device, ""), []))
    return report


def _backlog(check: DeviceCheck, worker_stamps: list[float]) -> int:
    """How many records the worker stamped within ``BACKLOG_WINDOW`` of the earlier stamp
    of the device's shortest judged gap."""
    judged = [(gap, i) for i, (gap, ok) in enumerate(check.sequence) if ok]
    if not judged or len(check.starts) != len(check.sequence) + 1:
        return 0
    at = check.starts[min(judged)[1]]
    return (bisect.bisect_right(worker_stamps, at + BACKLOG_WINDOW)
            - bisect.bisect_left(worker_stamps, at - BACKLOG_WINDOW))
