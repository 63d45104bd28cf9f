"""A seeded mutating proxy between a probe and a simulator (TCP or UDP, loopback only).

Requests go to the simulator unchanged; each reply (a chunk read from the simulator, or a
datagram) is mutated with probability ``rate`` (``mutators.mutate``). Every mutation
applied is recorded (``applied``), so a campaign can tell which runs saw which damage.
The proxy is simulator side: it never imports probe code.

TLS (WinRM over HTTPS): bytes inside TLS cannot be mutated in flight, so the TCP proxy can
terminate TLS: ``tls`` is the server context it presents to the probe (the simulator's own
test certificate and key, so the probe pins or verifies exactly what it would against the
simulator), ``upstream_tls`` the client context it talks to the simulator with. The
mutations then apply to the plaintext HTTP replies, re-encrypted on the way out; the
probe's TLS verification stays on as in production.

    proxy = FuzzProxy("s7", upstream=("127.0.0.1", 10102), seed=7, rate=0.3)
    await proxy.start()          # listens on 127.0.0.1:proxy.port
    ...
    await proxy.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from otaudit.simulators.base import require_loopback
from otaudit.simulators.fuzz.mutators import Mutation, mutate

MAX_TRICKLE_SECONDS = 5.0  # a trickled reply never takes longer than this in total
MAX_CLIENTS = 64  # UDP: upstream sockets kept, one per client port (the oldest goes first)


@dataclass
class FuzzStats:
    replies: int = 0  # replies that came from the simulator
    mutated: int = 0  # replies the proxy changed
    by_mutation: Counter[str] = field(default_factory=Counter)


class _Base:
    def __init__(self, protocol: str, upstream: tuple[str, int], *, seed: int = 0,
                 rate: float = 0.5, host: str = "127.0.0.1", port: int = 0,
                 only: Callable[[int, bytes], Mutation | None] | None = None) -> None:
        """``only(reply number, data)``: instead of seeded random damage, the mutation to
        apply to that reply (None: pass it on) — for regression tests of one finding."""
        self.protocol = protocol
        self.upstream = (require_loopback(upstream[0]), upstream[1])
        self.host, self.port = require_loopback(host), port
        self.rate = rate
        self.seed = seed
        self.rng = random.Random(seed)
        self.stats = FuzzStats()
        self.applied: list[Mutation] = []  # since the last ``take_applied`` (with ``reply``)
        self.only = only

    def reseed(self, seed: int) -> None:
        self.seed, self.rng = seed, random.Random(seed)

    def take_applied(self) -> list[Mutation]:
        """The mutations applied since the last call (one probe run's worth)."""
        applied, self.applied = self.applied, []
        return applied

    def _maybe_mutate(self, data: bytes, datagram: bool = False) -> Mutation | None:
        self.stats.replies += 1
        if self.only is not None:
            mutation = self.only(self.stats.replies, data)
            if mutation is None:
                return None
        elif self.rate <= 0 or self.rng.random() >= self.rate:
            return None
        else:
            mutation = mutate(self.protocol, data, self.rng, datagram=datagram)
        mutation = replace(mutation, reply=data)
        self.stats.mutated += 1
        self.stats.by_mutation[mutation.name] += 1
        self.applied.append(mutation)
        return mutation


class FuzzProxy(_Base):
    """TCP: one upstream connection per client connection (TLS terminated when ``tls``)."""

    def __init__(self, *args: Any, tls: ssl.SSLContext | None = None,
                 upstream_tls: ssl.SSLContext | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tls, self.upstream_tls = tls, upstream_tls
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, self.host, self.port,
                                                  ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

    async def __aenter__(self) -> FuzzProxy:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            up_reader, up_writer = await asyncio.open_connection(
                *self.upstream, ssl=self.upstream_tls,
                server_hostname="" if self.upstream_tls else None)
        except OSError:
            writer.transport.abort()
            self._tasks.discard(task)
            return
        forward = asyncio.create_task(self._pump(reader, up_writer))
        try:
            await self._replies(up_reader, writer)
        except (ConnectionError, ssl.SSLError, asyncio.CancelledError):
            pass
        finally:
            forward.cancel()
            with contextlib.suppress(BaseException):
                await forward
            for w in (writer, up_writer):
                w.transport.abort()
            self._tasks.discard(task)

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """The probe's requests upstream; its end (EOF, or a reset) ends the upstream side
        too. A reset used to leave the simulator waiting for the next request forever (one
        stuck connection pair per ~100 fuzzed ENIP runs: the campaign's RSS grew)."""
        try:
            while data := await reader.read(65_536):
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
                return
        except (ConnectionError, ssl.SSLError):
            pass
        except asyncio.CancelledError:
            return
        writer.close()

    async def _replies(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65_536):
            mutation = self._maybe_mutate(data)
            if mutation is None:
                writer.write(data)
                await writer.drain()
                continue
            if mutation.trickle:
                delay = min(mutation.trickle, MAX_TRICKLE_SECONDS / max(len(mutation.data), 1))
                for i in range(len(mutation.data)):
                    writer.write(mutation.data[i:i + 1])
                    await writer.drain()
                    await asyncio.sleep(delay)
            elif mutation.data:
                writer.write(mutation.data)
                await writer.drain()
            if mutation.close:
                return


class FuzzUdpProxy(_Base):
    """UDP: one upstream socket per client address; a dropped reply is silence."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._transport: asyncio.DatagramTransport | None = None
        self._upstreams: dict[Any, asyncio.DatagramTransport] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        proxy = self

        class Front(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: Any) -> None:
                proxy._spawn(proxy._forward(data, addr))

        transport, _ = await loop.create_datagram_endpoint(
            Front, local_addr=(self.host, self.port))
        self._transport = transport
        self.port = transport.get_extra_info("sockname")[1]

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for up in self._upstreams.values():
            up.close()
        self._upstreams.clear()
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    async def __aenter__(self) -> FuzzUdpProxy:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    def forget_clients(self) -> None:
        """Close the upstream socket of every client seen so far (a campaign calls it
        between two runs of one worker: a finished run's client ports never come back)."""
        for up in self._upstreams.values():
            up.close()
        self._upstreams.clear()

    async def _forward(self, data: bytes, addr: Any) -> None:
        upstream = self._upstreams.get(addr)
        if upstream is None:
            loop = asyncio.get_running_loop()
            upstream, _ = await loop.create_datagram_endpoint(
                lambda: _Back(self, addr), remote_addr=self.upstream)
            if len(self._upstreams) > MAX_CLIENTS:  # one per client port: forget the oldest
                oldest = next(iter(self._upstreams))
                self._upstreams.pop(oldest).close()
            self._upstreams[addr] = upstream
        upstream.sendto(data)

    async def _reply(self, data: bytes, addr: Any) -> None:
        if self._transport is None:
            return
        mutation = self._maybe_mutate(data, datagram=True)
        if mutation is None:
            self._transport.sendto(data, addr)
            return
        if mutation.trickle:  # a late datagram
            await asyncio.sleep(min(mutation.trickle * 10, MAX_TRICKLE_SECONDS))
        if mutation.data and self._transport is not None:
            self._transport.sendto(mutation.data, addr)


class _Back(asyncio.DatagramProtocol):
    """The simulator's replies to one client, handed to the proxy to mutate and relay."""

    def __init__(self, proxy: FuzzUdpProxy, client: Any) -> None:
        self.proxy, self.client = proxy, client

    def datagram_received(self, reply: bytes, _addr: Any) -> None:
        self.proxy._spawn(self.proxy._reply(reply, self.client))


def proxy_for(protocol: str, upstream: tuple[str, int], **kwargs: Any) -> FuzzProxy | FuzzUdpProxy:
    """The TCP or UDP proxy for ``protocol`` (SNMP is UDP); ``tls``/``upstream_tls``: TCP."""
    cls = FuzzUdpProxy if protocol == "snmp" else FuzzProxy
    return cls(protocol, upstream, **kwargs)
