"""The OPC UA probe against the simulated servers (and hand-made ones) over loopback TCP."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from opcua_helpers import (
    PROFILES,
    PROFILES_DIR,
    READ_KINDS,
    assert_evidence_backs_every_fact,
    opcua_server,
    opcua_servers,
    probe,
    probe_device,
)

from otaudit.observation import ProbeStatus
from otaudit.probes.opcua.probe import BUILD_FACTS, OpcUaProbe
from otaudit.simulators.opcua.profile import OpcUaProfile

from tests_helpers import free_tcp_port

FIXTURES = (opcua_server, opcua_servers)  # pytest finds fixtures by name in this module


def test_the_three_required_profiles_are_bundled():
    assert {"opcua-weak", "opcua-mixed", "opcua-hardened"} <= set(PROFILES)


def profile(name: str) -> OpcUaProfile:
    return OpcUaProfile.load(PROFILES_DIR / f"{name}.yaml")


@pytest.mark.parametrize("opcua_server", PROFILES, indirect=True)
async def test_endpoints_and_certificate_without_a_session(opcua_server):
    p = opcua_server.profile
    obs = await probe_device(opcua_server)
    assert obs.status is ProbeStatus.OK, obs.reason
    expected_policies = sorted({e.split("/")[0] for e in p.endpoints})
    assert obs.fact("opcua.security_policies") == expected_policies
    modes = {"None" if e == "None" else e.split("/")[1] for e in p.endpoints}
    assert obs.fact("opcua.security_modes") == sorted(modes)
    assert obs.fact("opcua.security_none") is ("None" in p.endpoints)
    tokens = {"anonymous": "Anonymous", "username": "UserName", "certificate": "Certificate"}
    assert obs.fact("opcua.user_token_types") == sorted(tokens[t] for t in p.tokens)
    assert obs.fact("opcua.anonymous") is ("anonymous" in p.tokens)
    assert obs.fact("opcua.application_uri") == p.application_uri
    assert obs.fact("opcua.product_uri") == p.product_uri
    assert obs.fact("opcua.application_name") == p.application_name
    assert len(obs.fact("opcua.endpoints")) == len(p.endpoints)
    assert obs.fact("opcua.cert_key_bits") == p.certificate.key_bits
    assert obs.fact("opcua.cert_signature_hash") == p.certificate.hash
    assert obs.fact("opcua.cert_self_signed") is not p.certificate.ca_issued
    cert_uri = p.cert_application_uri or p.application_uri
    assert obs.fact("opcua.cert_application_uri") == cert_uri
    assert obs.fact("opcua.cert_uri_matches") is (cert_uri == p.application_uri)
    days = p.certificate.valid_from_days + p.certificate.valid_days
    assert days - 2 <= obs.fact("opcua.cert_days_left") <= days
    for path in BUILD_FACTS:
        assert "read_build_info is false" in obs.unknown[path]
    kinds = [r.kind for r in opcua_server.log.records]
    assert kinds[:3] == ["hello", "open_secure_channel", "get_endpoints"]
    assert set(kinds) <= READ_KINDS and "create_session" not in kinds
    assert opcua_server.log.max_concurrent == 1
    assert_evidence_backs_every_fact(obs)


@pytest.mark.parametrize("opcua_server", ["opcua-weak", "opcua-mixed"], indirect=True)
async def test_build_info_through_an_anonymous_session_when_allowed(opcua_server):
    info = opcua_server.profile.build_info
    obs = await probe_device(opcua_server, read_build_info=True)
    assert obs.status is ProbeStatus.OK, obs.reason
    assert obs.fact("opcua.anonymous_session") is True
    assert obs.fact("identity.vendor") == info.manufacturer
    assert obs.fact("identity.product") == info.product_name
    assert obs.fact("identity.firmware_version") == info.software_version
    assert obs.fact("opcua.build_number") == info.build_number
    assert obs.fact("opcua.build_date").startswith(info.build_date.date().isoformat())
    records = opcua_server.log.records
    assert [r.kind for r in records][:7] == [
        "hello", "open_secure_channel", "get_endpoints", "create_session",
        "activate_session", "read", "close_session"]
    activate = next(r for r in records if r.kind == "activate_session")
    assert activate.detail["token"] == "AnonymousIdentityToken"
    read = next(r for r in records if r.kind == "read")
    assert set(read.detail["nodes"]) == {f"i={n}" for n in range(2261, 2267)}


@pytest.mark.parametrize("opcua_server", ["opcua-hardened"], indirect=True)
async def test_no_session_where_no_endpoint_allows_anonymous_users(opcua_server):
    obs = await probe_device(opcua_server, read_build_info=True)
    assert obs.status is ProbeStatus.OK
    for path in BUILD_FACTS:
        assert "no endpoint without security accepts anonymous" in obs.unknown[path]
    assert "create_session" not in opcua_server.log.kinds()


@pytest.mark.parametrize("opcua_server", ["opcua-weak"], indirect=True)
async def test_weak_posture(opcua_server):
    obs = await probe_device(opcua_server)
    assert obs.fact("opcua.cleartext_password") is True
    assert obs.fact("opcua.cert_key_bits") == 1024
    assert obs.fact("opcua.cert_days_left") < 0


@pytest.mark.parametrize("opcua_server", ["opcua-mixed"], indirect=True)
async def test_mixed_posture(opcua_server):
    obs = await probe_device(opcua_server)
    assert obs.fact("opcua.deprecated_policies") == ["Basic128Rsa15"]
    assert obs.fact("opcua.cleartext_password") is False  # user names use an encrypting policy
    assert obs.fact("opcua.cert_uri_matches") is False


@pytest.mark.parametrize("opcua_server", ["opcua-mixed"], indirect=True)
async def test_identify_opens_no_session_even_where_it_could(opcua_server):
    from otaudit.observation import AssetKind, AssetRef
    from otaudit.probes.base import ProbeContext, ProbeTarget
    from otaudit.probes.opcua.probe import OpcUaOptions

    ctx = ProbeContext(timeout=10)
    target = ProbeTarget(AssetRef(id="x", kind=AssetKind.HMI, zone="z"), opcua_server.host,
                         opcua_server.port, OpcUaOptions(read_build_info=True,
                                                         **opcua_server.endpoint_options))
    await OpcUaProbe().identify(target, ctx)
    assert "create_session" not in opcua_server.log.kinds()
    assert ctx.recorder.facts["opcua.application_uri"].value == "urn:scada-gw01:OPCUA:Gateway"


@pytest.mark.parametrize("opcua_server", ["opcua-weak"], indirect=True)
async def test_requests_are_paced(opcua_server):
    obs = await probe_device(opcua_server, read_build_info=True, min_interval=0.15)
    assert obs.status is ProbeStatus.OK
    assert opcua_server.log.min_interval() >= 0.15 * 0.8


async def test_nothing_listening_is_refused():
    obs = await probe("127.0.0.1", free_tcp_port())
    assert obs.status is ProbeStatus.REFUSED


@contextlib.asynccontextmanager
async def raw_server(reply: bytes):  # type: ignore[no-untyped-def]
    async def handler(reader, writer):
        with contextlib.suppress(Exception):
            await reader.read(1024)
            writer.write(reply)
            await writer.drain()
            await asyncio.sleep(0.5)
        writer.close()

    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def test_a_server_that_answers_garbage_fails_the_run():
    async with raw_server(b"ACKF\x0c\x00\x00\x00garbage!") as port:
        obs = await probe("127.0.0.1", port, deadline=5)
    assert obs.status in (ProbeStatus.ERROR, ProbeStatus.TIMEOUT)
    assert "opcua.security_policies" in obs.unknown


async def test_a_silent_server_times_out():
    async with raw_server(b"") as port:
        obs = await probe("127.0.0.1", port, deadline=3)
    assert obs.status in (ProbeStatus.TIMEOUT, ProbeStatus.ERROR)


async def test_a_reply_racing_the_request_timeout_is_a_probe_timeout() -> None:
    """asyncua's wait_for2 raises a CancelledError subclass when the reply comes as our
    request timeout cancels it; asyncio.timeout let it through as a cancellation, and the
    run ended without a status (fuzz campaign under load, 12 workers)."""
    from otaudit.probes.base import ProbeTimeout
    from otaudit.probes.opcua.client import OpcUaConnection

    class CancelledWithResult(asyncio.CancelledError):
        pass

    async def racing() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise CancelledWithResult("reply", None) from None

    conn = OpcUaConnection("127.0.0.1", 4840, "opc.tcp://127.0.0.1:4840/", timeout=0.1)
    with pytest.raises(ProbeTimeout, match=r"GetEndpoints within 0\.1 s"):
        await conn._call(racing(), "GetEndpoints")
    task = asyncio.create_task(conn._call(racing(), "Read"))  # a cancel from outside stays one
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
