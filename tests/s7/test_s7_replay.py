"""Faithful replay: a recorded CPU answers only what was recorded; recordings round-trip."""

from __future__ import annotations

import subprocess
import sys

import pytest
from s7_testkit import FIXTURES, databank, probe, target_for, values

from otaudit.observation import ProbeStatus
from otaudit.probes.base import ProbeContext
from otaudit.probes.s7.facts import FACTS
from otaudit.probes.s7.record import record
from otaudit.simulators import bundled_profile
from otaudit.simulators.s7.device import S7Device, from_profile
from otaudit.simulators.s7.profile import S7Profile, load_profile

from tests_helpers import free_tcp_port, wait_for_line

S7_1200_0011 = FIXTURES / "szl0011_s7-1200_cpu1214c.hex"
PROTECTION_AND_MODE = [p for p in FACTS if p.startswith("s7.protection") or p in (
    "s7.password_set", "s7.mode_selector", "s7.cpu_mode")]
ANSWERING = ["s7-1200-weak", "s7-1500-strong", "s7-300-weak", "s7-300-write-protected"]


def hex_of(path) -> str:
    return "".join(line for line in path.read_text().splitlines() if not line.startswith("#"))


def test_a_profile_of_recordings_needs_no_invented_fields():
    profile = S7Profile(name="rec", slot=1, raw_szl={"0x0011": hex_of(S7_1200_0011)})
    assert profile.module is profile.components is profile.protection is None
    assert profile.cpu_mode is None and profile.family is None
    assert profile.accept_slots == [1]
    with pytest.raises(ValueError, match="'module' needs 'family'"):
        S7Profile.model_validate({"name": "x", "slot": 1, "module": {
            "order_code": "6ES7 214-1AG40-0XB0", "hardware_version": 1, "firmware": "V4.5.2"}})


async def test_recording_of_0011_alone_gives_identity_and_unknown_protection():
    """The real S7-1200 dump of SZL 0x0011 only: protection and mode are not invented."""
    profile = S7Profile(name="rec", slot=1, raw_szl={"0x0011": hex_of(S7_1200_0011)})
    async with S7Device(profile) as device:
        obs = await probe(device)
    assert obs.status is ProbeStatus.OK, obs.reason
    facts = values(obs)
    assert facts == {"s7.classic_access": True, "identity.vendor": "Siemens",
                     "identity.product": "SIMATIC S7-1200",
                     "identity.order_code": "6ES7 214-1AG40-0XB0",
                     "identity.firmware_version": "V4.6.0", "identity.hardware_version": "16"}
    for path in [*PROTECTION_AND_MODE, "identity.serial", "s7.module_type"]:
        assert "not available on this CPU" in obs.unknown[path], path
        assert "0xD402" in obs.unknown[path]
    assert "0x0232/0x0004" in obs.unknown["s7.protection_level"]
    assert "0x0424/0x0000" in obs.unknown["s7.cpu_mode"]
    kinds = [r.kind for r in device.log.records]
    assert kinds.count("read_szl") == 4  # asked, answered with the error, not invented


async def test_real_cpu_databanks_replay(shared_dir):
    """snap7's captured CPU 315-2 PN/DP: the four SZLs the probe reads, byte for byte."""
    banks = databank(shared_dir)
    raw = {"0x0011": banks[(0x0011, None)].hex(), "0x001C": banks[(0x001C, None)].hex(),
           "0x0232/0x0004": banks[(0x0232, 0x0004)].hex(),
           "0x0424": banks[(0x0424, None)].hex()}
    async with S7Device(S7Profile(name="cpu315", slot=2, raw_szl=raw)) as device:
        obs = await probe(device)
    facts = values(obs)
    assert facts["identity.order_code"] == "6ES7 315-2EH14-0AB0"
    assert facts["identity.firmware_version"] == "V3.2.6"
    assert facts["identity.serial"] == "S C-C2UR28922012"
    assert facts["s7.protection_level"] == 1 and facts["s7.mode_selector"] == "RUN-P"
    assert facts["s7.cpu_mode"] == "RUN"
    del raw["0x0232/0x0004"], raw["0x0424"]
    async with S7Device(S7Profile(name="cpu315", slot=2, raw_szl=raw)) as device:
        obs = await probe(device)
    assert "identity.serial" in obs.facts
    assert all(path in obs.unknown and "0xD402" in obs.unknown[path]
               for path in PROTECTION_AND_MODE)


@pytest.mark.parametrize("name", ANSWERING)
async def test_recording_replays_to_identical_facts(name, tmp_path):
    out = tmp_path / f"{name}.yaml"
    async with from_profile(bundled_profile("s7", name)) as device:
        original = await probe(device)
        written = await record(target_for(device.host, device.port),
                               ProbeContext(timeout=3.0), out)
    assert written == [out]
    assert device.log.kinds() <= {"cotp_connect", "setup_communication", "read_szl"}
    replayed_profile = load_profile(out)
    assert replayed_profile.module is None and replayed_profile.protection is None
    async with S7Device(replayed_profile) as replay:
        replayed = await probe(replay)
    assert replayed.status is original.status
    assert values(replayed) == values(original)
    assert replayed.unknown == original.unknown


async def test_refused_szl_is_left_out_of_the_recording(tmp_path):
    profile = S7Profile(name="rec", slot=1, raw_szl={"0x0011": hex_of(S7_1200_0011)})
    async with S7Device(profile) as device:
        await record(target_for(device.host, device.port), ProbeContext(timeout=3.0),
                     tmp_path / "r.yaml")
    recorded = load_profile(tmp_path / "r.yaml")
    assert list(recorded.raw_szl) == ["0x0011/0x0000"]
    assert "0x0232/0x0004 refused" in recorded.description


def test_cli_record(tmp_path):
    port = free_tcp_port()
    sim = subprocess.Popen([sys.executable, "-m", "otaudit.cli.main", "sim", "s7", "--profile",
                            "s7-300-weak", "--port", str(port)], stderr=subprocess.PIPE,
                           text=True)
    try:
        wait_for_line(sim, "listening")
        out = tmp_path / "plc.yaml"
        done = subprocess.run([sys.executable, "-m", "otaudit.cli.main", "sim", "s7",
                               "--record", "127.0.0.1", "--port", str(port), "--out", str(out),
                               "--slot", "2"], capture_output=True, text=True, timeout=60)
    finally:
        sim.terminate()
        sim.wait(10)
    assert done.returncode == 0, done.stderr
    assert f"-> {out}" in done.stderr
    assert load_profile(out).slot == 2 and len(load_profile(out).raw_szl) == 4
