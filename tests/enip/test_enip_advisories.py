"""Identities the EtherNet/IP probe reads flow into advisory matching: a real Rockwell
advisory matches the simulated ControlLogix by product and revision, with its reason."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from enip_helpers import probe_device, simulator

from otaudit.server.advisories.matcher import AdvisoryIndex, Identity
from otaudit.server.advisories.normalise import normalise
from otaudit.simulators.plant import DEMO_ADVISORIES

ICSA_22_144_01 = DEMO_ADVISORIES / "icsa-22-144-01.json"


async def identity_of(profile: str) -> Identity:
    async with simulator(profile) as device:
        obs = await probe_device(device)
    return Identity.from_facts({path: f.value for path, f in obs.facts.items()})


async def test_the_demo_controllogix_is_affected_by_icsa_22_144_01():
    index = AdvisoryIndex([normalise(json.loads(ICSA_22_144_01.read_text()))])
    identity = await identity_of("controllogix-5580")
    assert (identity.vendor, identity.product, identity.order_code,
            identity.firmware_version) == ("Rockwell Automation", "ControlLogix 5580",
                                           "1756-L83E", "32.011")
    [verdict] = index.match(identity)
    assert verdict.advisory_id == "ICSA-22-144-01" and verdict.cve == "CVE-2022-1797"
    assert verdict.verdict == "affected"
    assert "ControlLogix 5580" in verdict.product_name and verdict.expression == "<= 32.013"
    assert "32.011 is <= 32.013" in verdict.reason and verdict.fixed_in == "v33.011"


@pytest.mark.parametrize("profile", ["compactlogix-5380", "compactlogix-5380-cip-security"])
async def test_patched_compactlogix_controllers_are_not_affected(profile):
    index = AdvisoryIndex([normalise(json.loads(ICSA_22_144_01.read_text()))])
    verdicts = index.match(await identity_of(profile))
    assert verdicts and all(v.verdict in ("fixed", "not_affected") for v in verdicts)
    assert all("CompactLogix 5380" in v.product_name for v in verdicts)


async def test_against_every_rockwell_advisory_of_the_corpus(shared_dir: Path):
    """The ControlLogix identity against the corpus' Rockwell advisories: ICSA-22-144-01
    is among the affected ones and nothing names another vendor or family."""
    corpus = shared_dir / "advisories" / "corpus" / "cisa-ot-csaf.tar.gz"
    if not corpus.exists():
        pytest.skip(f"{corpus} is absent")
    docs = []
    with tarfile.open(corpus) as tar:
        for member in tar:
            if member.isfile() and member.name.endswith(".json"):
                raw = tar.extractfile(member).read()
                if b"Rockwell" in raw and b"Logix" in raw:
                    docs.append(normalise(json.loads(raw)))
    assert len(docs) > 10
    verdicts = AdvisoryIndex(docs).match(await identity_of("controllogix-5580"))
    affected = {v.advisory_id for v in verdicts if v.verdict == "affected"}
    assert "ICSA-22-144-01" in affected
    assert all("5580" in v.product_name or "Logix" in v.product_name for v in verdicts)
