"""The S7 probe against the S7 simulator over real loopback sockets."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
from s7_testkit import databank, expected_facts, probe, values

from otaudit.observation import ProbeStatus
from otaudit.probes import get_probe
from otaudit.probes.s7.facts import FACTS
from otaudit.probes.s7.probe import S7Options
from otaudit.simulators import bundled_profile
from otaudit.simulators.s7.device import S7Device, from_profile
from otaudit.simulators.s7.profile import S7Profile, load_profile

from tests_helpers import free_tcp_port, wait_for_line

PROFILE_DIR = bundled_profile("s7", "s7-1200-weak").parent
ANSWERING = sorted(p.stem for p in PROFILE_DIR.glob("*.yaml") if "refusing" not in p.stem)
READ_ONLY_KINDS = {"cotp_connect", "setup_communication", "read_szl"}
GARBLED = Path(__file__).with_name("profiles") / "s7-1200-garbled.yaml"


def test_registered_with_the_documented_facts():
    s7_probe = get_probe("s7")
    assert s7_probe.facts is FACTS and s7_probe.default_port == 102
    docs = (Path(__file__).resolve().parents[2] / "docs" / "facts.md").read_text()
    for path in FACTS:
        assert f"`{path}`" in docs, path
    assert all(path.startswith(("identity.", "s7.")) for path in FACTS)


@pytest.mark.parametrize("name", ANSWERING)
async def test_probe_and_simulator_agree_on_every_fact(name):
    async with from_profile(bundled_profile("s7", name)) as device:
        obs = await probe(device)
    assert obs.status is ProbeStatus.OK, obs.reason
    assert values(obs) == expected_facts(device.profile)
    assert set(obs.facts) | set(obs.unknown) == set(FACTS)
    for fact in obs.facts.values():  # every fact points at the request it came from
        assert fact.evidence and {e.id for e in obs.evidence} >= set(fact.evidence)
    assert device.log.kinds() <= READ_ONLY_KINDS
    assert device.log.max_concurrent == 1


async def test_firmware_from_firmware_record_not_boot_loader():
    async with from_profile(bundled_profile("s7", "s7-300-weak")) as device:
        obs = await probe(device)
    assert values(obs)["identity.firmware_version"] == "V3.2.6"
    request = next(e.request for e in obs.evidence
                   if e.id == obs.facts["identity.firmware_version"].evidence[0])
    assert request == "s7 read_szl 0x0011/0x0000"


async def test_real_cpu_315_recording_served_byte_for_byte(shared_dir):
    banks = databank(shared_dir)
    raw = {"0x0011": banks[(0x0011, None)], "0x001C": banks[(0x001C, None)],
           "0x0232/0x0004": banks[(0x0232, 0x0004)], "0x0424": banks[(0x0424, None)]}
    profile = load_profile(bundled_profile("s7", "s7-300-weak"))
    profile = S7Profile.model_validate({**profile.model_dump(),
                                        "raw_szl": {k: v.hex() for k, v in raw.items()}})
    async with S7Device(profile) as device:
        obs = await probe(device)
    facts = values(obs)
    assert obs.status is ProbeStatus.OK
    assert facts["identity.order_code"] == "6ES7 315-2EH14-0AB0"
    assert facts["identity.firmware_version"] == "V3.2.6"  # not the boot loader's A32.9.9
    assert facts["identity.serial"] == "S C-C2UR28922012"
    assert facts["identity.name"] == "SNAP7-SERVER"
    assert facts["identity.product"] == "SIMATIC S7-300"
    assert (facts["s7.protection_level"], facts["s7.mode_selector"],
            facts["s7.password_set"], facts["s7.cpu_mode"]) == (1, "RUN-P", False, "RUN")


async def test_slot_fallback_for_s7_300():
    async with from_profile(bundled_profile("s7", "s7-300-weak")) as device:
        obs = await probe(device)
    assert obs.status is ProbeStatus.OK
    attempts = [(r.detail["slot"], r.detail["accepted"]) for r in device.log.records
                if r.kind == "cotp_connect"]
    assert attempts == [(1, False), (2, True)]
    assert "slot 2" in obs.evidence[1].request


@pytest.mark.parametrize(("options", "slots"), [
    ({"family": "s7-300"}, [2]), ({"family": "s7-1500"}, [1]), ({"slot": 3}, [3]),
    ({"rack": 1}, [1, 2])])
async def test_rack_and_slot_options(options, slots):
    async with from_profile(bundled_profile("s7", "s7-300-weak")) as device:
        await probe(device, **options)
    tried = [r.detail["slot"] for r in device.log.records if r.kind == "cotp_connect"]
    assert tried == slots
    rack = options.get("rack", 0)
    assert {r.detail["rack"] for r in device.log.records if r.kind == "cotp_connect"} == {rack}


def test_cli_options():
    assert S7Options.from_cli({"rack": "0", "slot": "2"}).candidates() == [(0, 2)]
    assert S7Options.from_cli({"family": "s7-400"}).candidates() == [(0, 2)]
    with pytest.raises(ValueError):
        S7Options.from_cli({"family": "s7-200"})


async def test_refusing_cpu_is_refused_with_classic_access_false():
    async with from_profile(bundled_profile("s7", "s7-1200-refusing")) as device:
        obs = await probe(device)
    assert obs.status is ProbeStatus.REFUSED
    assert "classic S7 access refused" in (obs.reason or "")
    assert "0x88" in (obs.reason or "")
    assert values(obs) == {"s7.classic_access": False}
    assert obs.unknown["identity.firmware_version"] == obs.reason
    assert device.log.kinds() == {"cotp_connect"}  # slot 1, then slot 2 once
    assert len(device.log.records) == 2


async def test_wrong_slot_is_not_taken_for_disabled_classic_access():
    """COTP reason 0x03 (address unknown) names the rack/slot, not the CPU's access policy."""
    async with from_profile(bundled_profile("s7", "s7-300-weak")) as device:
        obs = await probe(device, slot=3)
    assert obs.status is ProbeStatus.REFUSED
    assert "no CPU at the tried rack/slot" in (obs.reason or "")
    assert "s7.classic_access" not in obs.facts
    assert "check rack/slot" in obs.unknown["s7.classic_access"]


async def test_setup_communication_refused():
    async with from_profile(None, refuse="setup") as device:
        obs = await probe(device)
    assert obs.status is ProbeStatus.REFUSED, obs.reason
    assert values(obs) == {"s7.classic_access": False}
    assert device.log.kinds() <= READ_ONLY_KINDS


async def test_a_connection_closed_without_a_cotp_answer_is_no_refusal():
    """Only a COTP disconnect request refuses; a bare close leaves classic_access unknown."""
    async with from_profile(None, refuse="close") as device:
        obs = await probe(device)
    assert obs.status is ProbeStatus.ERROR, obs.reason
    assert "s7.classic_access" not in obs.facts
    assert "neither confirmed nor refused" in obs.unknown["s7.classic_access"]
    assert device.log.kinds() <= READ_ONLY_KINDS


async def test_some_szl_refused_keeps_the_rest(tmp_path):
    """A CPU without SZL 0x0424 (error 0xD402): the other facts stay, cpu_mode unknown."""
    async with from_profile(None) as device:
        device.profile.raw_szl.clear()
        server = device._server
        assert server is not None
        original = server._get_szl_data
        server._get_szl_data = lambda i, x: None if i == 0x0424 else original(i, x)
        obs = await probe(device)
    assert obs.status is ProbeStatus.OK
    assert "s7.cpu_mode" in obs.unknown and "0xd402" in obs.unknown["s7.cpu_mode"]
    assert values(obs)["identity.firmware_version"] == "V4.5.2"
    assert obs.errors and "0x0424" in obs.errors[0]


async def test_garbled_szl_fails_this_run_only():
    garbled, good = from_profile(GARBLED), from_profile(bundled_profile("s7", "s7-1500-strong"))
    async with garbled, good:
        bad_obs, good_obs = await asyncio.gather(probe(garbled), probe(good))
    assert bad_obs.status is ProbeStatus.ERROR
    assert "SZL 0x001C" in (bad_obs.reason or "") and "truncated" in (bad_obs.reason or "")
    assert "truncated" in bad_obs.unknown["identity.serial"]
    facts = values(bad_obs)  # what could be read is kept
    assert facts["identity.firmware_version"] == "V4.5.2"
    assert facts["s7.protection_level"] == 1 and facts["s7.cpu_mode"] == "RUN"
    assert good_obs.status is ProbeStatus.OK
    assert garbled.log.kinds() <= READ_ONLY_KINDS


async def test_nothing_listening_is_refused():
    port = free_tcp_port()
    device = from_profile(None, port=port)  # not started
    obs = await probe(device)
    assert obs.status is ProbeStatus.REFUSED
    assert "s7.classic_access" in obs.unknown


async def test_silent_device_times_out_within_bound():
    release = asyncio.Event()

    async def swallow(reader, writer):
        await reader.read(1000)
        await release.wait()
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    device = from_profile(None, port=port)
    started = asyncio.get_running_loop().time()
    async with server:
        obs = await probe(device, op_timeout=0.5, deadline=5.0)
        release.set()
    assert obs.status is ProbeStatus.TIMEOUT
    assert "within 0.5 s" in (obs.reason or "")
    assert asyncio.get_running_loop().time() - started < 2.0


async def test_requests_are_paced():
    async with from_profile(None) as device:
        obs = await probe(device, min_interval=0.05)
    assert obs.status is ProbeStatus.OK
    # one paced step = one connect (COTP + setup back to back) or one SZL read
    times = [r.at for r in device.log.records if r.kind in ("cotp_connect", "read_szl")]
    assert len(times) == 5
    assert min(b - a for a, b in itertools.pairwise(times)) >= 0.045


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "otaudit.cli.main", *args],
                          capture_output=True, text=True, timeout=60, **kwargs)


def test_cli_probe_against_cli_simulator():
    port = free_tcp_port()
    with subprocess.Popen([sys.executable, "-m", "otaudit.cli.main", "sim", "s7", "--profile",
                           "s7-300-weak", "--port", str(port)],
                          stderr=subprocess.PIPE, text=True) as sim:
        try:
            assert sim.stderr is not None
            wait_for_line(sim, f"listening on 127.0.0.1:{port}")
            done = _run(["probe", "s7", "127.0.0.1", "--port", str(port), "--rack", "0",
                         "--slot", "2", "--json"])
            assert done.returncode == 0, done.stderr
            obs = json.loads(done.stdout)
            assert obs["status"] == "ok"
            assert obs["facts"]["identity.order_code"]["value"] == "6ES7 315-2EH14-0AB0"
            refused = _run(["probe", "s7", "127.0.0.1", "--port", str(port), "--slot", "1"])
            assert refused.returncode == 1 and "refused" in refused.stdout
        finally:
            sim.terminate()
