"""A short seeded slice of the fuzzing campaign (``make fuzz`` runs 10,000 replies per
protocol), and the campaign's findings as regression tests, each through the real proxy."""

from __future__ import annotations

import asyncio
import gc
import os
import random
import re
from pathlib import Path

import pytest
from campaign import (
    COMMUNITY_VAR,
    PASSWORD_VAR,
    PROTOCOLS,
    Report,
    campaign,
    judge,
    probe_once,
    probe_target,
    settled_connections,
    targets,
)

from otaudit.observation import AssetKind, AssetRef, Fact, Observation, ProbeStatus, utcnow
from otaudit.probes import get_probe
from otaudit.simulators import create_simulator
from otaudit.simulators.fuzz import mutators
from otaudit.simulators.fuzz.mutators import Mutation
from otaudit.simulators.fuzz.proxy import proxy_for

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(COMMUNITY_VAR, "public")
    monkeypatch.setenv(PASSWORD_VAR, "otaudit-demo")


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_seeded_slice_crashes_nothing_and_invents_nothing(
        protocol: str, tmp_path: Path) -> None:
    report = await campaign(protocol, replies=30, seed=16, workers=6, workdir=tmp_path)
    assert report.fuzzed_replies >= 30 and report.runs > 0
    assert report.crashes == []
    assert report.without_status == 0
    assert report.invented == []
    assert not report.probe_bugs, report.probe_bugs
    assert sum(report.statuses.values()) == report.runs
    assert report.open_at_end == 0  # every connection the runs opened was closed


def test_mutations_are_seeded_and_protocol_aware() -> None:
    mbap = bytes.fromhex("000100000006012b0e0183")
    cotp = bytes.fromhex("0300001611d00001000100c0010a")
    snmp = bytes.fromhex("302602010104067075626c6963a219020401020304020100020100"
                         "300b300906052b060102010500")
    ssh = b"SSH-2.0-OpenSSH_9.2\r\n\x00\x00\x01\x0c\x0a\x14abc"
    for protocol, sample in (("modbus", mbap), ("s7", cotp), ("snmp", snmp), ("ssh", ssh)):
        first = [mutators.mutate(protocol, sample, random.Random(3)) for _ in range(1)]
        again = [mutators.mutate(protocol, sample, random.Random(3)) for _ in range(1)]
        assert first == again
        names = {mutators.mutate(protocol, sample, random.Random(seed)).name
                 for seed in range(400)}
        assert {"bit_flip", "truncate_close", "early_close", "oversize", "slow_trickle"} <= names
        own = {"modbus": "mbap_length_lie", "s7": "tpkt_length_lie", "snmp": "ber_length_lie",
               "ssh": "ssh_packet_length_lie"}[protocol]
        assert own in names, (protocol, names)
    enip = bytes.fromhex("63001a00" + "00" * 20 + "01000c001400" + "01" * 20)
    opcua = b"ACKF\x1c\x00\x00\x00" + bytes(20)
    http = (b"HTTP/1.1 200 \r\nServer: Microsoft-HTTPAPI/2.0\r\nContent-Length: 10\r\n"
            b"Content-Type: application/soap+xml\r\n\r\n<s:E>x</s:E>")
    for protocol, sample, own_names in (
            ("enip", enip, {"enip_length_lie", "enip_item_length_lie", "enip_wrong_command",
                            "enip_wrong_item_type"}),
            ("opcua", opcua, {"opcua_size_lie", "opcua_wrong_message_type",
                              "opcua_wrong_chunk_type"}),
            ("winrm", http, {"http_length_lie", "http_chunked_size_lie", "http_chunked_not_hex",
                             "http_wrong_status", "http_soap_fault", "http_body_truncated"})):
        assert mutators.mutate(protocol, sample, random.Random(3)) \
            == mutators.mutate(protocol, sample, random.Random(3))
        names = {mutators.mutate(protocol, sample, random.Random(seed)).name
                 for seed in range(600)}
        assert own_names <= names, (protocol, own_names - names)
    enip_lie = mutators.enip_length_lie(enip, random.Random(2))
    assert enip_lie.kind == "breaking" and enip_lie.data[:2] == enip[:2]
    assert enip_lie.data[2:4] != enip[2:4] or enip_lie.name == "enip_item_length_lie"
    size_lie = mutators.opcua_length_lie(opcua, random.Random(2))
    assert size_lie.data[:4] == b"ACKF" and size_lie.data[4:8] != opcua[4:8]
    fault = next(m for seed in range(200) if (m := mutators.http_wrong_status(
        http, random.Random(seed))).name == "http_soap_fault")
    assert fault.kind == "altering" and b"s:Fault" in fault.data \
        and f"Content-Length: {len(mutators.SOAP_FAULT)}".encode() in fault.data
    lie = mutators.ber_length_lie(bytes.fromhex("300602010104017a"), random.Random(1))
    assert lie.kind == "breaking" and len(lie.data) >= 7
    datagram = mutators.mutate("snmp", b"\x30" * 10, random.Random(5), datagram=True)
    assert len(datagram.data) <= mutators.MAX_DATAGRAM


def test_the_fuzz_proxy_is_simulator_side() -> None:
    sources = "\n".join(p.read_text() for p in (REPO / "simulators" / "fuzz").glob("*.py"))
    assert not re.search(r"^\s*(from|import)\s+otaudit\.probes", sources, re.MULTILINE)


def snmp_version(datagram: bytes) -> int | None:
    """0 for an SNMPv1 message, 1 for v2c (the version INTEGER after the outer header)."""
    at = mutators._find_version(datagram)
    return datagram[at] if at is not None else None


async def _through(protocol: str, tmp_path: Path, only, run: int = 0,  # type: ignore[no-untyped-def]
                   after=None):
    """One probe run through a proxy applying ``only``; ``after(device)`` is awaited
    before the simulator stops."""
    spec = targets(tmp_path)[protocol]
    probe = get_probe(protocol)
    device = create_simulator(protocol, spec.profile, **spec.sim_options)
    async with device:
        proxy = proxy_for(protocol, (device.host, device.port), only=only,
                          **spec.proxy_options(device))
        async with proxy:
            obs = await probe_once(probe, probe_target(spec, type(probe), proxy.port, run,
                                                       device), spec.deadline)
            if after is not None:
                await after(device)
    return obs, proxy


async def test_finding_modbus_identification_cut_short_is_no_object_table(
        tmp_path: Path) -> None:
    """Finding: the objects of the first category were reported as the device's whole
    object table when a later request failed."""
    def cut_second(number: int, data: bytes) -> Mutation | None:
        return Mutation("truncate_close", "breaking", data[:5], close=True) \
            if number == 2 else None

    obs, proxy = await _through("modbus", tmp_path, cut_second)
    assert proxy.stats.mutated == 1
    assert obs.status is ProbeStatus.ERROR
    assert "modbus.device_id_objects" not in obs.facts
    assert "incomplete" in obs.unknown["modbus.device_id_objects"]
    assert obs.facts["identity.vendor"].value == "Schneider Electric"  # read before: kept


@pytest.mark.parametrize("banner", [b"SSH-2.0-\x8cOpenSSH\r\n", b"SSH-2.0-OK\r\n\x00\x00\x00"])
async def test_finding_ssh_malformed_server_data_is_an_ssh_error(
        tmp_path: Path, banner: bytes) -> None:
    """Finding: asyncssh's UnicodeDecodeError / PacketDecodeError escaped as probe bugs."""
    banners: list[int] = []

    def bad_banner(number: int, data: bytes) -> Mutation | None:
        if not data.startswith(b"SSH-"):
            return None
        banners.append(number)  # the first connection reads KEXINIT with our own parser;
        return Mutation("bad_banner", "altering", banner, close=True) \
            if len(banners) == 2 else None  # the second is asyncssh's

    obs, _ = await _through("ssh", tmp_path, bad_banner)
    assert obs.status in (ProbeStatus.ERROR, ProbeStatus.TIMEOUT), obs.reason
    assert not (obs.reason or "").startswith("probe failure"), obs.reason


async def test_finding_snmp_an_invalid_answer_to_a_version_is_not_silence(
        tmp_path: Path) -> None:
    """Finding: junk in answer to the v1 probe made ``snmp.v1_enabled`` false and the list
    of answering versions shorter."""
    def junk_for_v1(number: int, data: bytes) -> Mutation | None:
        return Mutation("junk", "altering", data[:6]) if snmp_version(data) == 0 else None

    obs, proxy = await _through("snmp", tmp_path, junk_for_v1)
    assert proxy.stats.mutated >= 1
    assert obs.status is ProbeStatus.OK, obs.reason
    assert "snmp.v1_enabled" not in obs.facts and "snmp.v1_enabled" in obs.unknown
    assert "snmp.versions_answering" in obs.unknown
    assert obs.facts["snmp.v2c_enabled"].value is True


async def test_a_single_lost_snmp_datagram_does_not_disable_a_version(tmp_path: Path) -> None:
    dropped: list[int] = []

    def drop_first_v1(number: int, data: bytes) -> Mutation | None:
        if snmp_version(data) == 0 and not dropped:
            dropped.append(number)
            return Mutation("early_close", "breaking", b"", close=True)
        return None

    obs, _ = await _through("snmp", tmp_path, drop_first_v1)
    assert dropped and obs.facts["snmp.v1_enabled"].value is True


def test_make_fuzz_runs_the_campaign() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^fuzz:.*\n\t.*tests/fuzz/campaign\.py --replies 10000", makefile,
                     re.MULTILINE)
    assert os.path.exists(REPO / "tests" / "fuzz" / "campaign.py")


V1_REPLY = bytes.fromhex("302602010004067075626c6963a219020401020304020100020100"
                         "300b300906052b060102010500")
V2C_REPLY = V1_REPLY[:4] + b"\x01" + V1_REPLY[5:]
V3_REPLY = bytes.fromhex("303e020103301102040102030402030100000401040201030410300e04"
                         "00020100020100040004000400301404000400a80e0204010203040201"
                         "000201003000")


def snmp_observation(**facts: object) -> Observation:
    now = utcnow()
    return Observation(collector_id="fuzz", site="fuzz",
                       asset=AssetRef(id="snmp-fuzz", kind=AssetKind.SWITCH, zone="z"),
                       probe="snmp", probe_version="0", endpoint="127.0.0.1:161",
                       started_at=now, finished_at=now, status=ProbeStatus.OK,
                       facts={p.replace("_", ".", 1): Fact(value=v, evidence=["e1"])
                              for p, v in facts.items()})


@pytest.mark.parametrize(("damaged", "kind", "expect"), [
    (None, "breaking", "load"),          # no reply touched at all
    (V2C_REPLY, "breaking", "load"),     # only another version's reply was touched
    (V3_REPLY, "altering", "load"),
    (V1_REPLY, "breaking", "invented"),  # the v1 reply was dropped: damage made the fact
    (V1_REPLY, "altering", "altered"),
])
def test_the_campaign_tells_silence_on_a_damaged_reply_from_a_load_artefact(
        damaged: bytes | None, kind: str, expect: str) -> None:
    """A fact inferred from silence is invented only when the proxy touched a reply of
    that version; with no such reply touched it is a load artefact (fuzz campaign,
    2026-12-07: runs without any mutation reported v1 off)."""
    assert [mutators.snmp_version(r) for r in (V1_REPLY, V2C_REPLY, V3_REPLY)] == [0, 1, 3]
    clean = {"snmp.v1_enabled": True, "snmp.v2c_enabled": True,
             "snmp.versions_answering": ["v1", "v2c"], "snmp.sys_name": "sw"}
    obs = snmp_observation(snmp_v1_enabled=False, snmp_v2c_enabled=True,
                           snmp_versions_answering=["v2c"], snmp_sys_name="sw")
    applied = [] if damaged is None else [
        Mutation("early_close" if kind == "breaking" else "bit_flip", kind,  # type: ignore[arg-type]
                 b"", reply=damaged)]
    report = Report("snmp")
    judge(report, clean, obs, applied, run=7)
    counts = {"load": len(report.load_artefacts), "invented": len(report.invented),
              "altered": report.altered}
    assert counts == {name: 2 if name == expect else 0 for name in counts}
    paths = {e["path"] for e in (report.load_artefacts or report.invented)}
    assert paths <= {"snmp.v1_enabled", "snmp.versions_answering"}


def test_a_fact_not_inferred_from_silence_is_invented_after_breaking_damage() -> None:
    clean = {"snmp.sys_name": "sw"}
    obs = snmp_observation(snmp_sys_name="other")
    report = Report("snmp")
    judge(report, clean, obs, [Mutation("ber_length_lie", "breaking", b"",
                                        reply=V2C_REPLY)], run=1)
    assert [e["path"] for e in report.invented] == ["snmp.sys_name"]
    assert report.load_artefacts == []
    judge(report, clean, obs, [], run=2)  # divergent with no damage at all: still invented
    assert len(report.invented) == 2 and report.load_artefacts == []


async def test_the_campaign_keeps_its_own_bookkeeping_bounded(tmp_path: Path) -> None:
    """The SNMP campaign's RSS grew 70-90 -> 158-178 MiB over 10,000 replies: not the probe
    (no pysnmp or otaudit.probes object grew over 800 runs) but the campaign's simulator
    logging every request (14 per run) and one proxy socket per client port ever seen."""
    workers = 6
    report = await campaign("snmp", replies=60, seed=5, workers=workers, workdir=tmp_path)
    bound = (workers + 2) * 25  # the runs in flight (and the clean ones) at most
    assert report.logged_requests > bound >= report.max_log_records
    assert report.request_kinds <= {"GET", "GETNEXT", "GETBULK", "MALFORMED", "ENCRYPTED"}
    assert "GET" in report.request_kinds


async def test_udp_clients_are_forgotten_by_proxy_and_simulator(tmp_path: Path) -> None:
    spec = targets(tmp_path)["snmp"]
    probe = get_probe("snmp")
    device = create_simulator("snmp", spec.profile)
    async with device, proxy_for("snmp", (device.host, device.port), rate=0.0) as proxy:
        obs = await probe_once(probe, probe_target(spec, type(probe), proxy.port, 0))
        assert obs.status is ProbeStatus.OK, obs.reason
        assert len(proxy._upstreams) == 2 == device.log.open_connections  # probe, discovery
        proxy.forget_clients()
        device.forget_peers()
        assert len(proxy._upstreams) == 0 == device.log.open_connections
        again = await probe_once(probe, probe_target(spec, type(probe), proxy.port, 1))
        assert again.status is ProbeStatus.OK, again.reason


async def test_finding_opcua_a_damaged_activate_session_reply_is_no_refusal(
        tmp_path: Path) -> None:
    """Finding: an ActivateSession reply cut short (or with a lying size) made
    ``opcua.anonymous_session`` false, as if the server had refused anonymous users."""
    def cut_activate(number: int, data: bytes) -> Mutation | None:
        return Mutation("truncate_close", "breaking", data[:20], close=True) \
            if number == 5 else None

    obs, proxy = await _through("opcua", tmp_path, cut_activate)
    assert proxy.stats.mutated == 1
    assert "opcua.anonymous_session" not in obs.facts, obs.facts.get("opcua.anonymous_session")
    assert obs.status is not ProbeStatus.OK
    assert obs.facts["opcua.security_none"].value is True  # read before the damage: kept


def _chunked(head: bytes, body: bytes, size: int) -> bytes:
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(
        b"content-length")]
    return b"\r\n".join([*lines, b"Transfer-Encoding: chunked"]) + b"\r\n\r\n" \
        + f"{size:x}\r\n".encode() + body + b"\r\n0\r\n\r\n"


@pytest.mark.parametrize(("damage", "close"), [
    (lambda head, body: head + b"\r\n\r\n" + body[:100], True),
    (lambda head, body: head + b"\r\n\r\n" + body[:100], False),
    (lambda head, body: _chunked(head, body, len(body) * 2 + 16), True),
    (lambda head, body: _chunked(head, body, len(body) * 2 + 16), False),
], ids=["cut-then-closed", "cut-then-silent", "chunk-size-lie-closed", "chunk-size-lie-silent"])
async def test_finding_winrm_a_reply_body_cut_short_is_a_winrm_error(
        tmp_path: Path, damage, close: bool) -> None:  # type: ignore[no-untyped-def]
    """Finding: urllib3's ProtocolError (a body cut or a chunk size lying, then closed) and
    ReadTimeoutError (then silence) escaped the WinRM probe as probe failures (the
    runner's catch-all)."""
    cut: list[int] = []

    def cut_body(number: int, data: bytes) -> Mutation | None:
        head, sep, body = data.partition(b"\r\n\r\n")
        if cut or not sep or len(body) < 200 or number < 2:
            return None
        cut.append(number)
        return Mutation("http_body_truncated", "breaking", damage(head, body), close=close)

    obs, proxy = await _through("winrm", tmp_path, cut_body)
    assert cut and proxy.stats.mutated == 1
    assert obs.status in (ProbeStatus.ERROR, ProbeStatus.TIMEOUT), obs.reason
    assert not (obs.reason or "").startswith("probe failure"), obs.reason


@pytest.mark.parametrize("close", [True, False], ids=["cut-then-closed", "cut-then-silent"])
async def test_finding_winrm_a_broken_reply_leaves_no_connection_open(
        tmp_path: Path, close: bool) -> None:
    """Finding (the campaign's leaked-connection count): a connection a broken reply kept
    checked out was not in the pool the session closed, so it stayed open - the host saw
    an idle connection outlive the run - until the garbage collector happened to run."""
    def cut_create(number: int, data: bytes) -> Mutation | None:
        head, sep, body = data.partition(b"\r\n\r\n")
        if number != 3 or not sep:  # 401 to the bare POST, 401 to the login, then create
            return None
        return Mutation("http_body_truncated", "breaking",
                        head + sep + body[:len(body) // 2], close=close)

    left_open: list[int] = []

    async def count(device) -> None:  # type: ignore[no-untyped-def]
        left_open.append(await settled_connections(device, grace=3.0))

    gc.disable()  # a collection would close the leaked socket and hide the finding
    try:
        obs, proxy = await _through("winrm", tmp_path, cut_create, after=count)
    finally:
        gc.enable()
    assert proxy.stats.mutated == 1
    assert obs.status is not ProbeStatus.OK
    assert left_open == [0]


async def test_finding_winrm_a_head_cut_short_offers_no_schemes(tmp_path: Path) -> None:
    """Finding: http.client takes the end of the connection for the end of the headers, so
    a 401 cut before its WWW-Authenticate header(s) made ``winrm.auth_offered`` empty."""
    def cut_head(number: int, data: bytes) -> Mutation | None:
        if number != 1:
            return None
        return Mutation("truncate_close", "breaking", data[:data.index(b"\r\n") + 12],
                        close=True)  # the status line and a piece of the next header

    obs, proxy = await _through("winrm", tmp_path, cut_head)
    assert proxy.stats.mutated == 1
    assert "winrm.auth_offered" not in obs.facts, obs.facts.get("winrm.auth_offered")
    assert obs.status is ProbeStatus.ERROR


async def test_finding_enip_a_silent_cip_security_port_is_no_verdict(tmp_path: Path) -> None:
    """Finding (campaign under load): a TLS handshake that timed out on the CIP Security
    port made ``enip.cip_security`` false; silence is no answer, so it is unknown."""
    import asyncio
    import dataclasses

    silent: list[asyncio.StreamWriter] = []

    async def accept_and_say_nothing(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        silent.append(w)

    server = await asyncio.start_server(accept_and_say_nothing, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    spec = targets(tmp_path)["enip"]
    probe = get_probe("enip")
    device = create_simulator("enip", spec.profile, **spec.sim_options)
    try:
        async with device:
            target = probe_target(spec, type(probe), device.port, 0, device)
            target = dataclasses.replace(target, options=type(target.options)(tls_port=port))
            obs = await probe_once(probe, target)
    finally:
        for w in silent:
            w.transport.abort()
        server.close()
    assert silent, "the probe never tried the TLS port"
    assert obs.status is ProbeStatus.OK, obs.reason
    assert obs.facts["enip.tls_port_open"].value is True  # it accepted the connection
    assert "enip.cip_security" not in obs.facts and "enip.cip_security" in obs.unknown
    assert obs.facts["enip.product_name"].value  # the identity read before is kept


async def test_finding_opcua_an_open_secure_channel_reply_cut_inside_is_an_error(
        tmp_path: Path) -> None:
    """Finding: asyncua answers the OpenSecureChannel call before it decodes the reply and
    then asserts that it did; a reply whose body is cut short inside a well-formed message
    (its size field says the shorter size) ended in the runner's catch-all (AssertionError,
    a probe bug) instead of a failed run."""
    def retype_open(number: int, data: bytes) -> Mutation | None:
        if number != 2:
            return None
        cut = data[:-12]
        return Mutation("opcua_size_lie", "breaking",
                        cut[:4] + len(cut).to_bytes(4, "little") + cut[8:])

    obs, proxy = await _through("opcua", tmp_path, retype_open)
    assert proxy.stats.mutated == 1
    assert obs.status is ProbeStatus.ERROR
    assert "probe failure" not in (obs.reason or ""), obs.reason
    assert "OpenSecureChannel" in (obs.reason or "")
    assert not obs.facts.get("opcua.security_none")


async def test_finding_opcua_an_endpoint_url_that_is_not_utf8_is_kept_as_an_escape(
        tmp_path: Path) -> None:
    """Finding: asyncua decodes strings with ``surrogateescape``; an endpoint URL holding a
    byte that is not UTF-8 reached the evidence as a lone surrogate, which pydantic refuses
    (the runner's catch-all). It is now written as a visible escape."""
    def bad_byte(number: int, data: bytes) -> Mutation | None:
        if number != 3 or b"opc.tcp://" not in data:
            return None
        at = data.index(b"opc.tcp://") + 3
        return Mutation("overwrite_byte", "altering", data[:at] + b"\xff" + data[at + 1:])

    obs, proxy = await _through("opcua", tmp_path, bad_byte)
    assert proxy.stats.mutated == 1
    assert "probe failure" not in (obs.reason or ""), obs.reason
    summaries = [e.excerpt for e in obs.evidence if "GetEndpoints" in e.request]
    assert summaries and "opc\\udcfftcp://" in summaries[0]
    obs.model_validate_json(obs.model_dump_json())  # storable as it is


async def test_a_connection_the_simulator_never_closes_is_counted_as_leaked() -> None:
    """asyncua refuses every client once 1,000 connections are open: a campaign must see a
    simulator that keeps dead connections (closes still in flight get the grace)."""
    from types import SimpleNamespace

    from otaudit.simulators.base import RequestLog

    device = SimpleNamespace(log=RequestLog())
    leaked, closing = device.log.open("a"), device.log.open("b")
    asyncio.get_running_loop().call_later(0.05, device.log.close, closing)
    assert await settled_connections(device, grace=1.0) == 1
    device.log.close(leaked)
    assert await settled_connections(device, grace=0.0) == 0
