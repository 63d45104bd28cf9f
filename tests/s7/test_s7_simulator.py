"""The S7 simulator on its own: profiles, records, ports, refusals, concurrency."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from pathlib import Path

import pytest
import snap7
from snap7.async_client import AsyncClient, AsyncISOTCPConnection
from snap7.error import S7ConnectionError, S7ProtocolError
from snap7.server import Server, ServerISOConnection

from otaudit.errors import InputError
from otaudit.simulators import bundled_profile, create_simulator
from otaudit.simulators.base import NotLoopback
from otaudit.simulators.s7.device import S7Device, from_profile
from otaudit.simulators.s7.profile import load_profile

PROFILES = sorted(p.stem for p in (Path(bundled_profile("s7", "s7-1200-weak")).parent)
                  .glob("*.yaml"))


def test_private_hooks_of_pinned_python_snap7_exist():
    """The simulator and client override private python-snap7 methods: pin 3.3.*."""
    assert snap7.__version__.startswith("3.3.")
    for name in ("_process_request", "_handle_szl", "_get_szl_data", "_handle_client",
                 "_server_loop", "_build_userdata_success_response", "_event_sender"):
        assert callable(getattr(Server, name)), name
    for name in ("_recv_exact", "_parse_cotp_cr", "_build_cotp_cc", "_build_tpkt"):
        assert callable(getattr(ServerISOConnection, name)), name
    assert callable(AsyncISOTCPConnection._iso_connect)
    assert callable(AsyncISOTCPConnection._parse_cotp_cc)
    assert callable(AsyncClient._send_data) and callable(AsyncClient._setup_communication)


@pytest.mark.parametrize("name", PROFILES)
def test_bundled_profiles_load(name):
    profile = load_profile(bundled_profile("s7", name))
    assert profile.name == name
    assert profile.slot in (profile.accept_slots or [])


def test_profile_errors_are_clear(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((bundled_profile("s7", "s7-1200-weak")).read_text()
                   .replace("V4.5.2", "V4.5") + "raw_szl: {'0x11/x': '00'}\n")
    with pytest.raises(InputError) as excinfo:
        load_profile(bad)
    problems = "\n".join(excinfo.value.problems)
    assert "module.firmware (line 12)" in problems and "like V4.5.2" in problems
    assert "raw_szl" in problems
    with pytest.raises(InputError, match=r"unknown option\(s\) --colour; known: --cpu-mode"):
        from_profile(None, colour="red")


def test_binds_loopback_only():
    with pytest.raises(NotLoopback):
        from_profile(None, host="0.0.0.0")


async def read(device: S7Device, szl_id: int, index: int, slot: int = 1) -> bytes:
    client = AsyncClient()
    await client.connect(device.host, 0, slot, tcp_port=device.port)
    try:
        szl = await client.read_szl(szl_id, index)
        return bytes(szl.Data[:szl.Header.LengthDR])
    finally:
        await client.disconnect()


async def test_records_have_real_layouts():
    async with from_profile(bundled_profile("s7", "s7-300-weak")) as device:
        module = await read(device, 0x0011, 0, slot=2)
        components = await read(device, 0x001C, 0, slot=2)
        one = await read(device, 0x011C, 0x0005, slot=2)
        header = await read(device, 0x0F1C, 0, slot=2)
    assert struct.unpack(">HH", module[:4]) == (28, 4)
    indexes = [struct.unpack(">H", module[4 + 28 * i: 6 + 28 * i])[0] for i in range(4)]
    assert indexes == [0x0001, 0x0006, 0x0007, 0x0081]
    assert module[4 + 2 * 28 + 22:4 + 3 * 28] == bytes.fromhex("00c0 5603 0206")  # V3.2.6
    assert struct.unpack(">HH", components[:4]) == (34, 10)
    assert one == struct.pack(">HHH", 34, 1, 5) + b"S C-D4UT19232011".ljust(32, b"\0")
    assert header == struct.pack(">HH", 34, 10)


async def test_raw_szl_is_served_byte_for_byte(tmp_path):
    raw = "0028 0001 0004 0003 0003 0003 0001 0000" + " 00" * 28
    profile = tmp_path / "raw.yaml"
    profile.write_text(bundled_profile("s7", "s7-1500-strong").read_text()
                       + f"raw_szl:\n  '0x0232/0x0004': '{raw}'\n  '0x0131': '0008 0000'\n")
    async with from_profile(profile) as device:
        assert await read(device, 0x0232, 4) == bytes.fromhex(raw)
        assert await read(device, 0x0131, 7) == bytes.fromhex("00080000")
        with pytest.raises(S7ProtocolError, match="0xd402"):
            await read(device, 0x0232, 1)


async def test_cli_overrides_and_registry():
    device = create_simulator("s7", Path("s7-300-weak"), cpu_mode="STOP", slot="2")
    assert isinstance(device, S7Device)
    assert device.profile.cpu_mode == "STOP" and device.profile.slot == 2
    async with device:
        payload = await read(device, 0x0424, 0, slot=2)
    assert payload[4 + 3] == 0x04


async def test_refuses_wrong_slot_and_refusing_profile():
    async with from_profile(bundled_profile("s7", "s7-300-weak")) as device:
        with pytest.raises(S7ConnectionError, match="COTP CC"):
            await read(device, 0x0011, 0, slot=1)
    async with from_profile(bundled_profile("s7", "s7-1200-refusing")) as device:
        for slot in (0, 1, 2):
            with pytest.raises(S7ConnectionError):
                await read(device, 0x0011, 0, slot=slot)
    kinds = [r.kind for r in device.log.records]
    assert kinds == ["cotp_connect"] * 3
    assert not any(r.detail["accepted"] for r in device.log.records)


async def test_several_devices_in_one_process_and_prompt_stop():
    devices = [from_profile(bundled_profile("s7", name)) for name in PROFILES
               if "refusing" not in name]
    for device in devices:
        await device.start()
    ports = {d.port for d in devices}
    assert len(ports) == len(devices)
    # an idle client connection must not delay stop (client threads wait 5 s in recv)
    idle = AsyncClient()
    await idle.connect(devices[0].host, 0, 1, tcp_port=devices[0].port)
    started = time.monotonic()
    for device in devices:
        await device.stop()
    assert time.monotonic() - started < 2.0
    await idle.disconnect()
    for port in ports:  # a new simulator can take each port at once
        async with from_profile(None, port=port) as again:
            assert again.port == port


async def test_many_concurrent_clients_do_not_stall():
    async with from_profile(None) as device:
        async def one() -> float:
            started = time.monotonic()
            await read(device, 0x0424, 0)
            return time.monotonic() - started

        durations = await asyncio.gather(*(one() for _ in range(40)))
    assert max(durations) < 0.9  # a listen backlog of 5 made some connects wait ~1 s
    assert device.log.connections == 40


async def test_two_simulators_cannot_share_a_port():
    async with from_profile(None) as first:
        second = from_profile(None, port=first.port)
        with pytest.raises(OSError):
            await second.start()


async def test_setup_refusal_mode():
    async with from_profile(None, refuse="setup") as device:
        with pytest.raises(S7ProtocolError):
            await read(device, 0x0011, 0)
    assert [r.kind for r in device.log.records] == ["cotp_connect", "setup_communication"]


async def test_ipv6_loopback():
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        pytest.skip("no ::1 on this machine")
    async with from_profile(None, host="::1") as device:
        assert (await read(device, 0x0424, 0))[:4] == struct.pack(">HH", 20, 1)
