"""``otaudit sim snmp --record``: a recording of each bundled agent replays to the same facts."""

from __future__ import annotations

import subprocess
import sys

import pytest
from snmp_testkit import PROFILES, credentials_for, probe, target_for, values

from otaudit.probes.base import ProbeContext
from otaudit.probes.snmp.options import SnmpOptions
from otaudit.probes.snmp.record import record
from otaudit.simulators import bundled_profile
from otaudit.simulators.snmp.device import SnmpSimulator, from_profile, recording_profile
from otaudit.simulators.snmp.profile import SnmpProfile
from otaudit.simulators.snmp.recordings import load_recording

from tests_helpers import free_udp_port, wait_for_line

# What a walk cannot carry: the live uptime counter, and the agent's access configuration
# (versions, users, communities, engine) - the replay agent serves v1/v2c with 'public'.
ACCESS = ("snmp.sys_uptime", "snmp.versions_answering", "snmp.v1_enabled", "snmp.v2c_enabled",
          "snmp.v3_enabled", "snmp.v3_security_level", "snmp.v3_auth_protocol",
          "snmp.v3_priv_protocol", "snmp.engine_id", "snmp.default_communities_accepted")


def mib_facts(obs) -> dict:
    return {k: v for k, v in values(obs).items() if k not in ACCESS}


@pytest.mark.parametrize("name", PROFILES)
async def test_recording_replays_to_identical_facts(name, tmp_path, monkeypatch):
    profile = SnmpProfile.load(bundled_profile("snmp", name))
    options = credentials_for(profile, monkeypatch)
    out = tmp_path / f"{name}.snmprec"
    async with from_profile(bundled_profile("snmp", name)) as sim:
        original = await probe(sim.port, **options)
        ctx = ProbeContext(timeout=3.0)
        written = await record(target_for("127.0.0.1", sim.port, **options), ctx, out)
        kinds = sim.log.kinds()
    assert written == [out] and kinds <= {"GET", "GETNEXT", "GETBULK"}
    secrets = [c.community for c in profile.agent.communities] + \
        [k for u in profile.agent.users for k in (u.auth_key, u.priv_key) if k]
    text = out.read_text()
    assert not any(s in text for s in secrets if s not in ("public", "private"))
    monkeypatch.setenv("T_REPLAY", "public")
    async with SnmpSimulator(recording_profile(out)) as replay:
        replayed = await probe(replay.port, version="v2c", community={"env": "T_REPLAY"})
    assert replayed.status is original.status
    assert mib_facts(replayed) == mib_facts(original)
    same_unknown = {k for k in original.unknown if k not in ACCESS}
    assert same_unknown == {k for k in replayed.unknown if k not in ACCESS}


async def test_community_echoed_in_a_value_is_redacted(tmp_path, monkeypatch):
    async with from_profile(bundled_profile("snmp", "scalance-x204irt-weak")) as sim:
        sim.table.set((1, 3, 6, 1, 2, 1, 1, 4, 0),
                      __import__("pysnmp.proto.api.v2c", fromlist=["v2c"]).OctetString(
                          b"ask ops, community plant-mon-7Kq2"))
        monkeypatch.setenv("T_C", "plant-mon-7Kq2")
        options = SnmpOptions(version="v2c", community={"env": "T_C"})
        from otaudit.observation import AssetKind, AssetRef
        from otaudit.probes.base import ProbeTarget
        target = ProbeTarget(asset=AssetRef(id="sw", kind=AssetKind.SWITCH, zone="z"),
                             host="127.0.0.1", port=sim.port, options=options)
        ctx = ProbeContext(timeout=3.0)
        await record(target, ctx, tmp_path / "r.snmprec")
    text = (tmp_path / "r.snmprec").read_text()
    assert "plant-mon-7Kq2" not in text and "[REDACTED]" in text
    assert bytes(load_recording(tmp_path / "r.snmprec")[(1, 3, 6, 1, 2, 1, 1, 1, 0)])


def test_cli_record(tmp_path):
    port = free_udp_port()
    sim = subprocess.Popen([sys.executable, "-m", "otaudit.cli.main", "sim", "snmp",
                            "--profile", "hirschmann-rs20-weak", "--port", str(port)],
                           stderr=subprocess.PIPE, text=True)
    try:
        wait_for_line(sim, "listening")
        out = tmp_path / "rs20.snmprec"
        done = subprocess.run([sys.executable, "-m", "otaudit.cli.main", "sim", "snmp",
                               "--record", "127.0.0.1", "--port", str(port), "--out", str(out),
                               "--community", "public"], capture_output=True, text=True,
                              timeout=120)
    finally:
        sim.terminate()
        sim.wait(10)
    assert done.returncode == 0, done.stderr
    table = load_recording(out)
    assert bytes(table[(1, 3, 6, 1, 2, 1, 1, 1, 0)]) == b"Hirschmann Railswitch"
    assert (1, 3, 6, 1, 4, 1, 248, 14, 1, 1, 2, 0) in table
