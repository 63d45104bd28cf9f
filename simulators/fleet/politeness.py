"""Did the auditor behave? Checks the request logs the plant's workers dumped on exit.

Concurrency is exact: each simulator counts its open connections, so the peak per
device must be 1. Pacing is judged from the time each simulator stamps a request, which
is when its event loop (or S7 thread) handles the bytes, not when they left the client:
on busy cores a stamp comes late, the gap before it grows and the gap after it shrinks.
So a gap may look shorter than the collector's minimum interval by up to ``tolerance``
(half the interval by default); a probe that skips ``pace()`` sends back to back, a
loopback round trip apart. The SSH simulator stamps a command only after the
channel-open and exec round trips (asyncssh has no hook earlier), so its stamps can
move by more than that; SSH gaps are reported but not judged (the stand-ins on port 22
stamp bytes on arrival and are judged). Unloaded, the SSH gaps are the interval +- 1 ms.

Connection set-up is one operation, not a request of its own: the S7 COTP connect and
setup-communication job, the SSH authentication steps, and the SNMPv3 engine discovery
(USM; pysnmp sends it itself just before the first authenticated request). SNMP runs
over UDP: a "connection" in its log is a client source port that stays open, so for UDP
devices the gap check alone shows that requests never overlap.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HANDSHAKE_KINDS = frozenset({"cotp_connect", "setup_communication", "auth_begin", "auth"})
DATAGRAM_PROTOCOLS = frozenset({"snmp"})
LATE_STAMPED = frozenset({"ssh"})  # simulators that log a request after round trips


def is_request(record: dict[str, Any]) -> bool:
    """Whether a log record is a request of its own (see the module docstring)."""
    if record.get("kind", "") in HANDSHAKE_KINDS:
        return False
    detail = record.get("detail") or {}
    discovery = (detail.get("version") == "v3" and not detail.get("user")
                 and not detail.get("varbinds"))
    return not (record.get("protocol") == "snmp" and discovery)


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
    gaps: list[float]  # seconds between consecutive requests, as stamped
    judged: bool = True  # stamps taken on arrival (see the module docstring)

    @property
    def min_gap(self) -> float | None:
        return min(self.gaps) if self.gaps else None

    @property
    def crowded(self) -> bool:
        """More than one connection at a time (TCP only, see the module docstring)."""
        return self.protocol not in DATAGRAM_PROTOCOLS and self.max_concurrent > 1

    def hurried(self, interval: float, tolerance: float) -> bool:
        return self.judged and self.min_gap is not None and self.min_gap < interval - tolerance


def _gap_stats(gaps: list[float], interval: float) -> str:
    if not gaps:
        return "no gaps"
    gaps = sorted(gaps)
    short = sum(1 for g in gaps if g < interval)
    return (f"{len(gaps)} gaps, smallest {gaps[0] * 1000:.1f} ms, 1st percentile "
            f"{gaps[len(gaps) // 100] * 1000:.1f} ms, median {gaps[len(gaps) // 2] * 1000:.0f}"
            f" ms, {short} under {interval * 1000:.0f} ms")


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

    def gaps(self, judged: bool = True) -> list[float]:
        return [g for d in self.devices if d.judged == judged for g in d.gaps]

    def summary(self) -> str:
        peak = max((d.max_concurrent for d in self.devices
                    if d.protocol not in DATAGRAM_PROTOCOLS), default=0)
        text = (f"politeness {'OK' if self.ok else 'VIOLATED'}: "
                f"{len(self.contacted)}/{len(self.devices)} devices contacted; peak concurrent "
                f"TCP connections per device {peak} (limit 1); request gaps (limit "
                f">= {(self.interval - self.tolerance) * 1000:.0f} ms): "
                f"{_gap_stats(self.gaps(True), self.interval)}; SSH commands (not judged): "
                f"{_gap_stats(self.gaps(False), self.interval)}")
        for d in (self.crowded + self.hurried)[:10]:
            gap = "-" if d.min_gap is None else f"{d.min_gap * 1000:.1f} ms"
            text += f"\n  {d.device} ({d.protocol}): {d.max_concurrent} concurrent, min gap {gap}"
        return text


def check_politeness(log_dir: Path, interval: float, tolerance: float | None = None
                     ) -> PolitenessReport:
    """Build the report from ``devices-w*.jsonl`` and ``requests-w*.jsonl`` in ``log_dir``
    (``tolerance`` defaults to half the interval)."""
    times: dict[str, list[float]] = {}
    for record in read_jsonl(sorted(log_dir.glob("requests-w*.jsonl"))):
        if is_request(record):
            times.setdefault(record["device"], []).append(float(record["at"]))
    report = PolitenessReport(interval, interval / 2 if tolerance is None else tolerance)
    for summary in read_jsonl(sorted(log_dir.glob("devices-w*.jsonl"))):
        stamps = sorted(times.get(summary["device"], []))
        late = summary["protocol"] in LATE_STAMPED and summary.get("runs", "profile") == "profile"
        report.devices.append(DeviceCheck(
            device=summary["device"], protocol=summary["protocol"],
            connections=int(summary["connections"]),
            max_concurrent=int(summary["max_concurrent"]), requests=len(stamps),
            gaps=[b - a for a, b in itertools.pairwise(stamps)], judged=not late))
    return report
