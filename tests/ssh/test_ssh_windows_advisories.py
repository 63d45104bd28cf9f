"""Installed ICS software read from a Windows station flows into advisory matching: each
product is an identity of its own, apart from the operating system's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ssh_helpers import PASSWORD, PASSWORD_VAR, credentials, probe, simulator

from otaudit.server.advisories.matcher import AdvisoryIndex, identities_from_facts
from otaudit.server.advisories.normalise import normalise
from otaudit.simulators.plant import DEMO_ADVISORIES

# CISA ICSA-22-132-06 (Siemens SIMATIC WinCC): "SIMATIC WinCC V7.4 and earlier: all versions"
WINCC = DEMO_ADVISORIES / "icsa-22-132-06.json"


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_VAR, PASSWORD)


async def identities(profile: str, tmp_path: Path):
    async with simulator(profile) as device:
        obs = await probe(device.port, tmp_path / "kh", **credentials(profile))
    return identities_from_facts({p: f.value for p, f in obs.facts.items()})


async def test_weak_station_is_affected_through_its_wincc_not_its_os(tmp_path: Path) -> None:
    index = AdvisoryIndex([normalise(json.loads(WINCC.read_text()))])
    found = dict(await identities("windows-weak", tmp_path))
    assert set(found) == {"host", "software:Siemens SIMATIC WinCC"}
    assert found["host"].vendor == "Microsoft" and found["host"].product is None
    assert index.match(found["host"]) == []  # the OS identity matches no WinCC advisory
    wincc = found["software:Siemens SIMATIC WinCC"]
    assert (wincc.vendor, wincc.product, wincc.firmware_version) == (
        "Siemens", "SIMATIC WinCC", "V7.4 SP1")
    verdicts = index.match(wincc)
    assert verdicts and {v.verdict for v in verdicts} == {"affected"}
    assert all(v.advisory_id == "ICSA-22-132-06" for v in verdicts)
    assert all("V7.4 and earlier" in v.product_name for v in verdicts)
    assert all(v.reason for v in verdicts)


async def test_hardened_station_wincc_is_fixed(tmp_path: Path) -> None:
    index = AdvisoryIndex([normalise(json.loads(WINCC.read_text()))])
    found = dict(await identities("windows-hardened", tmp_path))
    verdicts = index.match(found["software:Siemens SIMATIC WinCC"])
    assert verdicts and {v.verdict for v in verdicts} <= {"fixed", "not_affected"}
