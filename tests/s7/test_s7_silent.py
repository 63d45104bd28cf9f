"""A port that never answers, or answers garbage, is no refusal (issue 16, adversarial run):
``s7.classic_access`` stays unknown with the reason, so OTA-S7-003/004 cannot pass on it.
Only a COTP disconnect request with a policy reason (or an error answer to Setup
Communication) means "refused"."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable

import pytest
from s7_testkit import probe

from otaudit.observation import ProbeStatus
from otaudit.server.baseline import evaluate, load_baseline
from otaudit.server.baseline.model import AssetFacts, FactRecord
from otaudit.simulators.fleet.standins import GarbageTcpDevice, SilentTcpDevice
from otaudit.simulators.s7.device import from_profile


def tpkt(cotp: bytes) -> bytes:
    return struct.pack(">BBH", 3, 0, len(cotp) + 4) + cotp


def dr(reason: int) -> bytes:
    return tpkt(struct.pack(">BBHHB", 6, 0x80, 1, 1, reason))


class Scripted:
    """A TCP server that answers the COTP connection request with ``reply`` (then closes)."""

    def __init__(self, reply: Callable[[bytes], bytes]) -> None:
        self.reply = reply
        self.host, self.port = "127.0.0.1", 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> Scripted:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            data = await reader.read(4096)
            writer.write(self.reply(data))
            await writer.drain()
            await asyncio.sleep(0.2)
            writer.close()

        self.server = await asyncio.start_server(handle, self.host, 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


def s7_verdicts(obs) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """OTA-S7-003/004 on the observation's facts (as a stored S7-1200 would be judged)."""
    facts = {p: FactRecord(value=f.value, observation_id="o", probe="s7",
                           collected_at=obs.finished_at, evidence=[])
             for p, f in obs.facts.items()}
    facts["identity.order_code"] = FactRecord(value="6ES7 214-1AG40-0XB0", observation_id="o",
                                              probe="s7", collected_at=obs.finished_at,
                                              evidence=[])
    asset = AssetFacts(asset_id="plc-1", kind="plc", zone="z", facts=facts,
                       unknown=dict(obs.unknown), probe_status={"s7": obs.status.value})
    evaluation = evaluate(load_baseline(), {"z": 2}, [asset], now=obs.finished_at)
    return {f.check_id: f.status for f in evaluation.findings
            if f.check_id in ("OTA-S7-003", "OTA-S7-004")}


async def test_a_port_that_accepts_and_never_answers_is_unknown() -> None:
    device = SilentTcpDevice("s7")
    await device.start()
    try:
        obs = await probe(device, op_timeout=0.5, deadline=5.0)
    finally:
        await device.stop()
    assert obs.status is ProbeStatus.TIMEOUT
    assert "s7.classic_access" not in obs.facts
    assert "no answer" in obs.unknown["s7.classic_access"]
    assert set(s7_verdicts(obs).values()) <= {"unknown"}


@pytest.mark.parametrize("seed", range(5))
async def test_a_port_that_answers_garbage_is_unknown(seed: int) -> None:
    device = GarbageTcpDevice("s7", seed=seed)
    await device.start()
    try:
        obs = await probe(device, op_timeout=0.5, deadline=5.0)
    finally:
        await device.stop()
    assert obs.status in (ProbeStatus.ERROR, ProbeStatus.TIMEOUT), obs.reason
    assert "s7.classic_access" not in obs.facts
    assert "s7.classic_access" in obs.unknown
    assert set(s7_verdicts(obs).values()) <= {"unknown"}


@pytest.mark.parametrize(("reply", "status", "classic"), [
    (lambda _: dr(0x88), ProbeStatus.REFUSED, False),   # connection request refused
    (lambda _: dr(0x00), ProbeStatus.REFUSED, False),   # reason not specified: still a no
    (lambda _: dr(0x01), ProbeStatus.REFUSED, None),    # congestion: busy, not a policy
    (lambda _: dr(0x85), ProbeStatus.REFUSED, None),    # protocol error
    (lambda _: tpkt(b"\x02\xf0\x80"), ProbeStatus.ERROR, None),   # a DT TPDU, not CC/DR
    (lambda _: b"\x03\x00\x00\x02", ProbeStatus.ERROR, None),     # TPKT length 2 (< 4)
    (lambda _: b"HTTP/1.1 400 Bad Request\r\n\r\n", ProbeStatus.ERROR, None),
    (lambda _: b"", ProbeStatus.ERROR, None),           # accepted, closed, said nothing
])
async def test_only_a_cotp_refusal_with_a_policy_reason_is_false(reply, status, classic) -> None:  # type: ignore[no-untyped-def]
    async with Scripted(reply) as device:
        obs = await probe(device, op_timeout=1.0, deadline=5.0, slot=1)
    assert obs.status is status, obs.reason
    if classic is None:
        assert "s7.classic_access" not in obs.facts and "s7.classic_access" in obs.unknown
        assert set(s7_verdicts(obs).values()) <= {"unknown"}
    else:
        assert obs.facts["s7.classic_access"].value is classic
        assert set(s7_verdicts(obs).values()) == {"pass"}


async def test_the_simulators_refusing_cpu_still_passes_both_checks() -> None:
    from otaudit.simulators import bundled_profile

    async with from_profile(bundled_profile("s7", "s7-1200-refusing")) as device:
        obs = await probe(device)
    assert obs.facts["s7.classic_access"].value is False
    assert set(s7_verdicts(obs).values()) == {"pass"}
