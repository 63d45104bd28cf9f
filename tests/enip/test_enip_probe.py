"""The EtherNet/IP probe against the simulator (and hand-made servers) over loopback TCP."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
import yaml
from enip_helpers import (
    PROFILES,
    PROFILES_DIR,
    READ_KINDS,
    assert_evidence_backs_every_fact,
    probe,
    probe_device,
    simulator,
)

from otaudit.observation import ProbeStatus
from otaudit.probes.enip.probe import SESSION_FACTS, TLS_FACTS, EnipProbe
from otaudit.simulators import create_simulator
from otaudit.simulators.enip.profile import EnipProfile

from tests_helpers import free_tcp_port


def test_the_four_required_profiles_are_bundled():
    assert {"controllogix-5580", "compactlogix-5380", "micro850",
            "compactlogix-5380-cip-security"} <= set(PROFILES)


@pytest.mark.parametrize("name", PROFILES)
async def test_probe_reads_the_profile_identity_with_identity_requests_only(name):
    async with simulator(name) as device:
        obs = await probe_device(device)
    ident = EnipProfile.load(PROFILES_DIR / f"{name}.yaml").identity
    assert obs.status is ProbeStatus.OK, obs.reason
    assert obs.fact("enip.vendor_id") == ident.vendor_id
    assert obs.fact("enip.device_type") == ident.device_type
    assert obs.fact("enip.product_code") == ident.product_code
    assert obs.fact("enip.revision") == f"{ident.major}.{ident.minor}"
    assert obs.fact("enip.product_name") == ident.product_name
    assert obs.fact("enip.status") == ident.status
    assert obs.fact("enip.state") == ident.state
    assert obs.fact("identity.vendor") == "Rockwell Automation"
    assert obs.fact("identity.firmware_version") == f"{ident.major}.{ident.minor:03d}"
    assert obs.fact("identity.serial") == f"0x{ident.serial:08x}"
    assert obs.fact("identity.model") == ident.product_name
    assert obs.fact("enip.list_identity") is True
    assert obs.fact("enip.socket_address") == f"{device.host}:{device.port}"
    assert not obs.errors
    assert device.log.kinds() <= READ_KINDS
    assert device.log.max_concurrent == 1
    assert_evidence_backs_every_fact(obs)


async def test_a_logix_controller_without_cip_security():
    async with simulator("controllogix-5580") as device:
        obs = await probe_device(device)
    assert obs.fact("identity.product") == "ControlLogix 5580"
    assert obs.fact("identity.order_code") == "1756-L83E"
    assert obs.fact("identity.hardware_version") == "Series B"
    assert obs.fact("enip.session_accepted") is True
    assert obs.fact("enip.explicit_read") is True
    assert obs.fact("enip.tls_port_open") is False
    assert obs.fact("enip.cip_security") is False
    assert "is not open" in obs.unknown["enip.tls_version"]
    assert [r.kind for r in device.log.records] == [
        "list_identity", "register_session", "get_attributes_all", "unregister_session"]


async def test_a_controller_with_cip_security():
    async with simulator("compactlogix-5380-cip-security") as device:
        obs = await probe_device(device)
    assert obs.status is ProbeStatus.OK, obs.reason
    assert obs.fact("enip.session_accepted") is False
    assert "RegisterSession refused" in obs.unknown["enip.explicit_read"]
    assert obs.fact("enip.tls_port_open") is True
    assert obs.fact("enip.cip_security") is True
    assert obs.fact("enip.tls_version") in ("TLSv1.2", "TLSv1.3")
    assert obs.fact("enip.cert_key_type") == "RSA"
    assert obs.fact("enip.cert_key_bits") == 2048
    assert obs.fact("enip.cert_signature_hash") == "sha256"
    assert obs.fact("enip.cert_self_signed") is True
    assert 3600 <= obs.fact("enip.cert_days_left") <= 3620
    kinds = [r.kind for r in device.log.records]
    assert kinds == ["list_identity", "register_session", "tls_handshake"]


async def test_an_expired_1024_bit_certificate(tmp_path: Path):
    data = yaml.safe_load((PROFILES_DIR / "compactlogix-5380-cip-security.yaml").read_text())
    data["cip_security"]["certificate"].update(hash="sha384", key_bits=1024,
                                               valid_from_days=-400, valid_days=365)
    profile = tmp_path / "old.yaml"
    profile.write_text(yaml.safe_dump(data))
    async with simulator(profile) as device:
        obs = await probe_device(device)
    assert obs.fact("enip.cert_signature_hash") == "sha384"
    assert obs.fact("enip.cert_key_bits") == 1024
    assert obs.fact("enip.cert_days_left") in (-35, -36)


async def test_options_skip_the_session_and_the_tls_port():
    async with simulator("controllogix-5580") as device:
        obs = await probe(device.host, device.port, explicit=False, tls_port=0)
    assert [r.kind for r in device.log.records] == ["list_identity"]
    for path in (*SESSION_FACTS, *TLS_FACTS):
        assert "not checked" in obs.unknown[path]
    assert obs.status is ProbeStatus.OK


async def test_identify_sends_one_list_identity():
    from otaudit.observation import AssetKind, AssetRef
    from otaudit.probes.base import ProbeContext, ProbeTarget
    from otaudit.probes.enip.probe import EnipOptions

    async with simulator("micro850") as device:
        ctx = ProbeContext(timeout=5)
        await EnipProbe().identify(ProbeTarget(
            AssetRef(id="x", kind=AssetKind.PLC, zone="z"), device.host, device.port,
            EnipOptions()), ctx)
    assert [r.kind for r in device.log.records] == ["list_identity"]
    assert ctx.recorder.facts["identity.product"].value == "Micro850"


async def test_requests_are_paced():
    async with simulator("compactlogix-5380-cip-security") as device:
        obs = await probe_device(device, min_interval=0.15)
    assert obs.status is ProbeStatus.OK
    assert device.log.min_interval() >= 0.15 * 0.8


async def test_nothing_listening_is_refused():
    obs = await probe("127.0.0.1", free_tcp_port(), tls_port=0)
    assert obs.status is ProbeStatus.REFUSED
    assert "enip.list_identity" in obs.unknown


@contextlib.asynccontextmanager
async def raw_server(handler):  # type: ignore[no-untyped-def]
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def test_garbage_reply_fails_the_run_not_the_collector():
    async def handler(reader, writer):
        await reader.readexactly(24)
        header = bytes.fromhex("6300") + (6).to_bytes(2, "little") + bytes(20)
        writer.write(header + b"\x01\x00\x0c\x00\xff\xff")
        await writer.drain()
        await asyncio.sleep(0.5)
        writer.close()

    async with raw_server(handler) as port:
        obs = await probe("127.0.0.1", port, tls_port=0)
    assert obs.status is ProbeStatus.ERROR
    assert "malformed reply" in obs.reason


async def test_a_device_that_drops_the_session_request():
    async def handler(reader, writer):
        from otaudit.simulators.enip.device import HEADER, identity_attributes
        from otaudit.simulators.enip.profile import IdentitySpec

        head = await reader.readexactly(24)
        ident = IdentitySpec(vendor_id=1, device_type=14, product_code=1, major=1, minor=2,
                             serial=3, product_name="1756-L81E/B")
        item = b"\x01\x00" + bytes(16) + identity_attributes(ident) + b"\x03"
        body = b"\x01\x00\x0c\x00" + len(item).to_bytes(2, "little") + item
        writer.write(HEADER.pack(0x63, len(body), 0, 0, head[12:20], 0) + body)
        await writer.drain()
        await reader.readexactly(28)  # RegisterSession, then hang up
        writer.close()

    async with raw_server(handler) as port:
        obs = await probe("127.0.0.1", port, tls_port=0)
    assert obs.status is ProbeStatus.OK, obs.reason
    assert obs.fact("enip.session_accepted") is False
    assert obs.fact("identity.product") == "ControlLogix 5580"


async def test_a_silent_device_times_out_without_trying_tls():
    async def handler(reader, writer):
        await asyncio.sleep(5)

    async with raw_server(handler) as port:
        obs = await probe("127.0.0.1", port, deadline=3.0)
    assert obs.status is ProbeStatus.TIMEOUT
    assert all(e.request.startswith("enip TLS") is False for e in obs.evidence)


async def test_simulators_on_free_ports_take_free_tls_ports_too():
    """Regression: the demo's CIP Security PLC bound 2221 on 127.0.0.1 although it runs on a
    free port, so a second plant (or a test) on the same host stopped `otaudit demo`."""
    first = create_simulator("enip", "compactlogix-5380-cip-security")
    second = create_simulator("enip", "compactlogix-5380-cip-security")
    async with first, second:
        assert 0 < first.tls_port != second.tls_port
        assert 2221 not in (first.tls_port, second.tls_port)
        obs = await probe_device(second)
    assert obs.fact("enip.tls_port_open") is True
    pinned = create_simulator("enip", "compactlogix-5380-cip-security", port=free_tcp_port(),
                              tls_port=free_tcp_port())
    assert pinned.profile.cip_security is not None
    assert pinned.profile.cip_security.port != 0  # an explicit TLS port is kept
    real = create_simulator("enip", "compactlogix-5380-cip-security", port=44818)
    assert real.profile.cip_security is not None
    assert real.profile.cip_security.port == 2221  # a device on its own port: the real default
