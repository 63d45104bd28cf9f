"""Helpers for the Modbus tests: simulators in-process, probe runs, raw TCP servers."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from otaudit.observation import AssetKind, AssetRef, Observation
from otaudit.probes.base import ProbeTarget
from otaudit.probes.modbus.probe import ModbusOptions, ModbusProbe
from otaudit.probes.runner import run_probe
from otaudit.settings import DEFAULT_MIN_REQUEST_INTERVAL
from otaudit.simulators import create_simulator
from otaudit.simulators.modbus.device import ModbusSimulator

READS = {"fc01", "fc02", "fc03", "fc04", "fc43/14"}


@asynccontextmanager
async def simulator(profile: str = "schneider-m340", **options: Any
                    ) -> AsyncIterator[ModbusSimulator]:
    device = create_simulator("modbus", profile, **options)
    assert isinstance(device, ModbusSimulator)
    async with device:
        yield device


async def probe(port: int, *, deadline: float = 3.0, op_timeout: float | None = None,
                min_interval: float = DEFAULT_MIN_REQUEST_INTERVAL, **options: Any) -> Observation:
    target = ProbeTarget(asset=AssetRef(id="plc", kind=AssetKind.PLC, zone="cell-1"),
                         host="127.0.0.1", port=port, options=ModbusOptions(**options))
    return await run_probe(ModbusProbe(), target, collector_id="test", site="test",
                           deadline=deadline, op_timeout=op_timeout, min_interval=min_interval)


@asynccontextmanager
async def raw_server(answer: Callable[[int, bytes], bytes | None]) -> AsyncIterator[int]:
    """A hand-written Modbus/TCP server: ``answer(unit, pdu)`` → reply PDU or None (silence)."""

    handlers: set[asyncio.Task[None]] = set()
    writers: set[asyncio.StreamWriter] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.add(writer)
        try:
            while header := await reader.readexactly(7):
                tid, _pid, length, unit = struct.unpack(">HHHB", header)
                pdu = await reader.readexactly(length - 1)
                reply = answer(unit, pdu)
                if reply is not None:
                    writer.write(struct.pack(">HHHB", tid, 0, len(reply) + 1, unit) + reply)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.add(asyncio.ensure_future(serve(reader, writer)))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in writers:
            writer.close()  # the handlers see end of stream and return
        await asyncio.gather(*handlers)
        await server.wait_closed()
