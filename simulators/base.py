"""What every simulated device shares: loopback-only binding and a request log.

Simulators are the *other side of the wire*: they never import probe code. Each
records every connection and request it receives, so tests can prove that a
probe only read, used one connection at a time and kept its pace.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from otaudit.errors import InputError


class NotLoopback(InputError, ValueError):
    """A simulator asked to bind a non-loopback address."""

    def __init__(self, message: str) -> None:
        super().__init__("--host", [message])


def require_loopback(host: str) -> str:
    """Simulators listen on 127.0.0.0/8 or ::1 only."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host == "localhost":
            return "127.0.0.1"
        raise NotLoopback(f"simulators bind loopback addresses only, not {host!r}") from None
    if not address.is_loopback:
        raise NotLoopback(f"simulators bind loopback addresses only, not {host!r}")
    return host


@dataclass(frozen=True)
class RequestRecord:
    at: float
    connection: int
    peer: str
    kind: str
    detail: dict[str, Any] = field(default_factory=dict)


class RequestLog:
    """Thread-safe log of connections and requests seen by one simulated device."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.records: list[RequestRecord] = []
        self._open: set[int] = set()
        self._next = 0
        self.max_concurrent = 0
        self.connections = 0

    def open(self, peer: str) -> int:
        with self._lock:
            self._next += 1
            self._open.add(self._next)
            self.connections += 1
            self.max_concurrent = max(self.max_concurrent, len(self._open))
            return self._next

    def close(self, connection: int) -> None:
        with self._lock:
            self._open.discard(connection)

    def record(self, kind: str, *, connection: int = 0, peer: str = "", at: float | None = None,
               **detail: Any) -> None:
        """Log one request; ``at`` is its arrival time when taken earlier than now."""
        with self._lock:
            self.records.append(RequestRecord(time.time() if at is None else at, connection,
                                              peer, kind, detail))

    @property
    def open_connections(self) -> int:
        """Connections accepted and not yet closed."""
        with self._lock:
            return len(self._open)

    def kinds(self) -> set[str]:
        with self._lock:
            return {r.kind for r in self.records}

    def min_interval(self) -> float | None:
        """Smallest gap between two consecutive requests (None with fewer than 2)."""
        with self._lock:
            times = sorted(r.at for r in self.records)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        return min(gaps) if gaps else None

    def clear(self) -> None:
        with self._lock:
            self.records.clear()

    def dump_jsonl(self, path: str | Path) -> None:
        with self._lock, open(path, "a", encoding="utf-8") as fh:
            for r in self.records:
                fh.write(json.dumps(asdict(r), default=str) + "\n")


class SimulatedDevice(ABC):
    """One simulated device on one loopback port (``port=0`` picks a free one)."""

    protocol: ClassVar[str]

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = require_loopback(host)
        self.port = port
        self.log = RequestLog()

    @abstractmethod
    async def start(self) -> None:
        """Bind and serve in the background; afterwards ``self.port`` is the bound port."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop serving and release the port."""

    async def __aenter__(self) -> SimulatedDevice:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
