"""Misbehaving devices of any protocol: silent (never answers) and garbage (answers junk).

They log connections and every chunk or datagram they receive like the real
simulators do, so the politeness check covers them too.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any

from otaudit.simulators.base import SimulatedDevice

MAX_BUFFERED = 64 * 1024  # bytes a stand-in keeps reading per connection before closing


class _TcpStandIn(SimulatedDevice):
    """A TCP listener whose connections log what arrives; ``answer`` decides the reply."""

    def __init__(self, protocol: str, host: str = "127.0.0.1", port: int = 0,
                 seed: int = 0) -> None:
        super().__init__(host, port)
        self.protocol = protocol
        self._rng = random.Random(seed)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port,
                                                  backlog=128)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 5)
        self._server = None

    def greeting(self) -> bytes:
        return b""

    def answer(self, data: bytes) -> bytes:
        return b""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer_info = writer.get_extra_info("peername") or ("?", 0)
        peer = f"{peer_info[0]}:{peer_info[1]}"
        conn = self.log.open(peer)
        self._writers.add(writer)
        received = 0
        try:
            if hello := self.greeting():
                writer.write(hello)
            while received < MAX_BUFFERED:
                data = await reader.read(4096)
                if not data:
                    break
                received += len(data)
                self.log.record("bytes", connection=conn, peer=peer, size=len(data),
                                head=data[:16].hex())
                if reply := self.answer(data):
                    writer.write(reply)
                    await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.log.close(conn)
            self._writers.discard(writer)
            writer.transport.abort()


class SilentTcpDevice(_TcpStandIn):
    """Accepts connections and reads, never sends a byte (a hung device)."""


class GarbageTcpDevice(_TcpStandIn):
    """Answers every chunk with seeded random bytes; SSH-like protocols get a junk banner."""

    SPEAKS_FIRST = frozenset({"ssh"})

    def _junk(self, size: int) -> bytes:
        return bytes(self._rng.randrange(256) for _ in range(size))

    def greeting(self) -> bytes:
        return self._junk(24) + b"\r\n" if self.protocol in self.SPEAKS_FIRST else b""

    def answer(self, data: bytes) -> bytes:
        return self._junk(max(8, min(len(data), 64)))


class _Sink(asyncio.DatagramProtocol):
    def __init__(self, device: SilentUdpDevice) -> None:
        self.device = device

    def datagram_received(self, data: bytes, addr: Any) -> None:
        peer = f"{addr[0]}:{addr[1]}"
        self.device.log.record("datagram", peer=peer, size=len(data), head=data[:16].hex())


class SilentUdpDevice(SimulatedDevice):
    """Receives datagrams, answers none (an agent that is up but never replies)."""

    def __init__(self, protocol: str, host: str = "127.0.0.1", port: int = 0,
                 seed: int = 0) -> None:
        super().__init__(host, port)
        self.protocol = protocol
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Sink(self),
                                                           local_addr=(self.host, self.port))
        self._transport = transport
        self.port = transport.get_extra_info("sockname")[1]

    async def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None


def stand_in(runs: str, protocol: str, transport: str, host: str, port: int,
             seed: int) -> SimulatedDevice:
    """The stand-in device for ``runs`` = ``silent`` or ``garbage``."""
    if transport == "udp":
        if runs != "silent":
            raise ValueError(f"no {runs} stand-in for UDP ({protocol})")
        return SilentUdpDevice(protocol, host, port, seed)
    cls = SilentTcpDevice if runs == "silent" else GarbageTcpDevice
    return cls(protocol, host, port, seed)
