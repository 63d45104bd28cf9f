"""The read-only guard: writes never leave the probe's client (the simulator proves it)."""

from __future__ import annotations

import struct

import pytest
from modbus_helpers import READS, simulator
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.pdu.register_message import WriteSingleRegisterRequest

from otaudit.probes.base import ForbiddenOperation
from otaudit.probes.modbus.guard import GuardedModbusClient, check_frame


def frame(pdu: bytes, unit: int = 1, tid: int = 1) -> bytes:
    return struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu


async def test_guarded_client_reads_but_refuses_every_write() -> None:
    async with simulator("schneider-m340") as device:
        client = GuardedModbusClient("127.0.0.1", port=device.port, timeout=2, retries=0,
                                     reconnect_delay=0)
        assert await client.connect()
        try:
            reply = await client.read_holding_registers(0, count=2, device_id=1)
            assert reply.registers == [1200, 1180]
            attempts = [
                lambda: client.write_register(0, 1, device_id=1),
                lambda: client.write_registers(0, [1, 2], device_id=1),
                lambda: client.write_coil(0, True, device_id=1),
                lambda: client.write_coils(0, [True], device_id=1),
                lambda: client.mask_write_register(address=0, and_mask=0, or_mask=1),
                lambda: client.diag_restart_communication(False),
                lambda: client.report_device_id(),
            ]
            for attempt in attempts:
                with pytest.raises(ForbiddenOperation):
                    await attempt()
            reply = await client.read_holding_registers(0, count=1, device_id=1)
            assert reply.registers == [1200]  # unchanged, and the connection still works
        finally:
            client.close()
    assert device.log.kinds() == {"fc03"}
    assert device.log.kinds() <= READS


async def test_guard_holds_below_execute_on_the_wire_hooks() -> None:
    """Bypassing ``execute`` (straight to the transaction manager) is still refused."""
    async with simulator("schneider-m340") as device:
        client = GuardedModbusClient("127.0.0.1", port=device.port, timeout=1, retries=0,
                                     reconnect_delay=0)
        assert await client.connect()
        try:
            write = WriteSingleRegisterRequest(address=0, registers=[7], dev_id=1)
            with pytest.raises(ForbiddenOperation):
                await client.ctx.execute(False, write)
        finally:
            client.close()
    assert device.log.records == []


async def test_the_simulator_log_would_show_a_write() -> None:
    """Control for the tests above: an unguarded client's write is logged as fc06."""
    async with simulator("schneider-m340") as device:
        client = AsyncModbusTcpClient("127.0.0.1", port=device.port, timeout=2, retries=0,
                                      reconnect_delay=0)
        assert await client.connect()
        try:
            await client.write_register(9, 7, device_id=1)
        finally:
            client.close()
    assert [r.detail["function_code"] for r in device.log.records] == [6]


@pytest.mark.parametrize("pdu", [
    bytes([0x01, 0, 0, 0, 8]), bytes([0x02, 0, 0, 0, 8]), bytes([0x03, 0, 0, 0, 2]),
    bytes([0x04, 0, 0, 0, 2]), bytes([0x2B, 0x0E, 0x01, 0x00]),
])
def test_check_frame_allows_reads(pdu: bytes) -> None:
    check_frame(frame(pdu))


@pytest.mark.parametrize("pdu", [
    bytes([0x05, 0, 0, 0xFF, 0]), bytes([0x06, 0, 0, 0, 1]),
    bytes([0x0F, 0, 0, 0, 1, 1, 1]), bytes([0x10, 0, 0, 0, 1, 2, 0, 1]),
    bytes([0x16, 0, 0, 0, 0, 0, 1]), bytes([0x17, 0, 0, 0, 1, 0, 0, 0, 1, 2, 0, 1]),
    bytes([0x08, 0, 1, 0, 0]), bytes([0x2B, 0x0D, 0, 0]), bytes([0x5A, 0, 0x40]),
])
def test_check_frame_refuses_anything_else(pdu: bytes) -> None:
    with pytest.raises(ForbiddenOperation):
        check_frame(frame(pdu))


def test_check_frame_refuses_frames_it_cannot_read() -> None:
    read = frame(bytes([0x03, 0, 0, 0, 1]))
    for bad in (read[:7], read + frame(bytes([0x06, 0, 0, 0, 1]))):
        with pytest.raises(ForbiddenOperation):
            check_frame(bad)
