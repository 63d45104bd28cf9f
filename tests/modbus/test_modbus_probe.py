"""Modbus probe against the simulator (and hand-written servers) over loopback TCP."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import yaml
from modbus_helpers import READS, probe, raw_server, simulator

from otaudit.observation import Observation, ProbeStatus
from otaudit.probes.modbus.probe import MAX_REQUESTS, ModbusOptions
from otaudit.simulators import bundled_profile
from otaudit.simulators.modbus.profile import ModbusProfile

from tests_helpers import free_tcp_port

PROFILES = sorted((Path(__file__).parents[2] / "simulators/modbus/profiles").glob("*.yaml"))
IDENTIFIED = [p.stem for p in PROFILES if ModbusProfile.load(p).device_id.exception is None]


def assert_evidence_backs_every_fact(obs: Observation) -> None:
    ids = {e.id for e in obs.evidence}
    for path, fact in obs.facts.items():
        assert fact.evidence and set(fact.evidence) <= ids, path


def test_the_three_required_profiles_are_bundled() -> None:
    names = {p.stem for p in PROFILES}
    assert {"schneider-m340", "schneider-m221", "gateway-no-devid"} <= names
    plant = yaml.safe_load((Path(__file__).parents[2] / "simulators/demo_plant.yaml").read_text())
    for device in plant["devices"]:
        for sim in device["simulators"]:
            if sim["protocol"] == "modbus":
                assert bundled_profile("modbus", sim["profile"]).exists()
                ModbusOptions(**sim.get("endpoint", {}))


@pytest.mark.parametrize("name", IDENTIFIED)
async def test_probe_reads_the_profile_identity_with_reads_only(name: str) -> None:
    async with simulator(name) as device:
        obs = await probe(device.port)
    profile = device.profile.device_id
    objects = profile.objects
    assert obs.status is ProbeStatus.OK, obs.reason
    assert obs.fact("identity.vendor") == objects[0x00]
    assert obs.fact("identity.order_code") == objects[0x01]
    assert obs.fact("identity.firmware_version") == objects[0x02]
    assert obs.fact("identity.product") == objects[0x04]
    assert obs.fact("identity.model") == objects[0x05]
    level = profile.conformity & 0x7F
    expected = {f"0x{k:02x}": v for k, v in objects.items() if level == 3 or k < 0x80}
    assert obs.fact("modbus.device_id_objects") == expected
    assert obs.fact("modbus.device_id_conformity") == profile.conformity
    assert obs.fact("modbus.device_id_supported") is True
    assert obs.fact("modbus.unauthenticated_read") is True
    assert "modbus.secure_port_open" in obs.unknown
    assert_evidence_backs_every_fact(obs)
    assert device.log.kinds() <= READS
    assert device.log.connections == 1 and device.log.max_concurrent == 1


async def test_large_identity_is_read_across_more_follows() -> None:
    async with simulator("schneider-m340") as device:
        obs = await probe(device.port)
    extended = [r.detail for r in device.log.records if r.detail.get("read_code") == 3]
    assert len(extended) >= 2  # one reply could not hold the extended objects
    assert extended[1]["object_id"] > 0x80
    assert max(int(k, 16) for k in obs.fact("modbus.device_id_objects")) == 0x85
    objects = obs.facts["modbus.device_id_objects"]
    assert len(objects.evidence) >= 3


async def test_two_devices_in_one_process_keep_their_own_identity() -> None:
    async with simulator("schneider-m340") as m340, simulator("schneider-m221") as m221:
        a, b = await asyncio.gather(probe(m340.port), probe(m221.port))
    assert a.fact("identity.order_code") == "BMX P34 2020"
    assert b.fact("identity.order_code") == "TM221CE24R"


async def test_gateway_without_device_id_is_an_error_with_a_fact() -> None:
    async with simulator("gateway-no-devid") as device:
        obs = await probe(device.port)
    assert obs.status is ProbeStatus.ERROR
    assert obs.reason == ("exception 01 (illegal function): device identification "
                          "not supported")
    assert obs.fact("modbus.device_id_supported") is False
    assert_evidence_backs_every_fact(obs)
    assert obs.evidence[0].excerpt == "ab01"
    for path in ("identity.vendor", "identity.firmware_version", "modbus.device_id_objects"):
        assert path not in obs.facts and path in obs.unknown
    assert device.log.kinds() == {"fc43/14"}


@pytest.mark.parametrize(("unit", "reason"), [
    (2, "exception 0B (gateway target device failed to respond) to read device identification"),
    (3, "exception 04 (server device failure) to read device identification"),
    (7, "exception 0B (gateway target device failed to respond) to read device identification"),
])
async def test_gateway_unit_exceptions_are_errors(unit: int, reason: str) -> None:
    async with simulator("gateway-no-devid") as device:
        obs = await probe(device.port, unit=unit)
    assert obs.status is ProbeStatus.ERROR
    assert obs.reason == reason
    assert "modbus.device_id_supported" in obs.unknown
    assert [r.detail["unit"] for r in device.log.records] == [unit]


def test_simulator_and_probe_never_import_each_other() -> None:
    root = Path(__file__).parents[2]
    for folder, other in (("simulators/modbus", "otaudit.probes"),
                          ("probes/modbus", "otaudit.simulators")):
        for source in (root / folder).rglob("*.py"):
            assert other not in source.read_text(), source


def test_bad_profile_options_are_input_errors(tmp_path: Path) -> None:
    from otaudit.errors import InputError
    from otaudit.simulators.modbus.device import from_profile

    with pytest.raises(InputError, match="behaviour"):
        from_profile(None, behaviour="explode")
    with pytest.raises(InputError, match="unknown field"):
        from_profile(bundled_profile("modbus", "schneider-m221"), colour="red")
    with pytest.raises(InputError):
        from_profile(tmp_path / "missing.yaml")


async def test_closed_port_is_refused() -> None:
    obs = await probe(free_tcp_port())
    assert obs.status is ProbeStatus.REFUSED
    assert "refused" in (obs.reason or "")


async def test_garbage_device_id_reply_is_an_error_not_a_crash() -> None:
    async with simulator("schneider-m340", behaviour="garbage_devid") as device:
        obs = await probe(device.port)
    assert obs.status is ProbeStatus.ERROR
    assert (obs.reason or "").startswith("malformed reply: object 0x00 is truncated")
    assert obs.evidence and obs.evidence[0].encoding == "hex"
    assert not obs.facts


async def test_connection_dropped_mid_request_is_an_error_fast() -> None:
    async with simulator("schneider-m340", behaviour="close_on_devid") as device:
        started = time.monotonic()
        obs = await probe(device.port, deadline=5)
    assert obs.status is ProbeStatus.ERROR
    assert "closed the connection" in (obs.reason or "")
    assert time.monotonic() - started < 2


async def test_device_that_never_answers_times_out_within_the_deadline() -> None:
    async with raw_server(lambda unit, pdu: None) as port:
        started = time.monotonic()
        obs = await probe(port, deadline=1.0, op_timeout=0.5)
    elapsed = time.monotonic() - started
    assert obs.status is ProbeStatus.TIMEOUT
    assert "no reply" in (obs.reason or "")
    assert elapsed < 1.0


async def test_silent_simulator_hits_the_run_deadline() -> None:
    async with simulator("schneider-m340", behaviour="silent") as device:
        started = time.monotonic()
        obs = await probe(device.port, deadline=0.8)
    assert obs.status is ProbeStatus.TIMEOUT
    assert time.monotonic() - started < 1.3


async def test_slow_device_is_waited_for_and_requests_are_paced() -> None:
    async with simulator("schneider-m221", behaviour="slow", delay=0.1) as device:
        obs = await probe(device.port, min_interval=0.15)
    assert obs.status is ProbeStatus.OK
    assert obs.fact("identity.firmware_version") == "1.10.2.2"
    gap = device.log.min_interval()
    assert gap is not None and gap >= 0.14


async def test_read_codes_option_limits_the_categories() -> None:
    async with simulator("schneider-m340") as device:
        obs = await probe(device.port, read_codes=[1])
    assert set(obs.fact("modbus.device_id_objects")) == {"0x00", "0x01", "0x02"}
    assert "identity.product" in obs.unknown
    assert {r.detail["read_code"] for r in device.log.records} == {1}


async def test_endless_more_follows_is_bounded() -> None:
    def answer(unit: int, pdu: bytes) -> bytes:
        code, object_id = pdu[2], pdu[3]
        value = b"x%d" % object_id
        return bytes([0x2B, 0x0E, code, 0x83, 0xFF, object_id + 1, 1, object_id,
                      len(value)]) + value

    async with raw_server(answer) as port:
        obs = await probe(port)
    assert obs.status is ProbeStatus.OK
    assert len(obs.evidence) == MAX_REQUESTS
    assert any(f"stopped after {MAX_REQUESTS}" in e for e in obs.errors)


async def test_more_follows_without_progress_is_not_followed() -> None:
    def answer(unit: int, pdu: bytes) -> bytes:
        return bytes([0x2B, 0x0E, pdu[2], 0x81, 0xFF, 0x00, 1, 0, 4]) + b"Acme"

    async with raw_server(answer) as port:
        obs = await probe(port)
    assert obs.status is ProbeStatus.OK
    assert len(obs.evidence) == 1
    assert any("not followed" in e for e in obs.errors)


async def test_exception_on_a_higher_category_keeps_what_was_read() -> None:
    def answer(unit: int, pdu: bytes) -> bytes:
        if pdu[2] == 1:
            return bytes([0x2B, 0x0E, 1, 0x83, 0, 0, 1, 0, 4]) + b"Acme"
        return bytes([0xAB, 0x02])

    async with raw_server(answer) as port:
        obs = await probe(port)
    assert obs.status is ProbeStatus.OK
    assert obs.fact("identity.vendor") == "Acme"
    assert any("exception 02 (illegal data address)" in e for e in obs.errors)


def test_options_from_cli_flags() -> None:
    assert ModbusOptions.from_cli({"unit": "3", "read-codes": "1,2"}) == ModbusOptions(
        unit=3, read_codes=[1, 2])
    with pytest.raises(ValueError):
        ModbusOptions.from_cli({"unit": "256"})
    with pytest.raises(ValueError):
        ModbusOptions.from_cli({"read-codes": "4"})


async def test_pacing_counts_from_the_frame_handed_to_the_socket() -> None:
    """``ctx.sent()`` once per request frame, after the guard let it through."""
    from otaudit.probes.base import ProbeContext
    from otaudit.probes.modbus.client import ModbusSession

    class Counting(ProbeContext):
        calls = 0

        def sent(self) -> None:
            Counting.calls += 1
            super().sent()

    ctx = Counting(timeout=3.0, min_interval=0.0)
    async with simulator("schneider-m340") as device, ModbusSession(
            "127.0.0.1", device.port, unit=1, timeout=3.0, sent=ctx.sent) as session:
        before = ctx._last_request
        await session.read_device_id(1, 0)
        after_first = ctx._last_request
        await session.read_device_id(2, 3)
    assert Counting.calls == 2 == len([r for r in device.log.records if r.kind == "fc43/14"])
    assert after_first > before
