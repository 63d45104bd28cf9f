"""SL-A per FR of zones built from simulator observations, end to end through MQTT.

Two zones with target SL 2 on every FR hold the same kinds of device, hardened in one and
weak in the other. Every organisational requirement (``attestation: true`` in the controls
file) is attested as met, so the achieved levels come from what the probes read.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml

from otaudit.cli.demo import run_pipeline
from otaudit.settings import Settings

pytestmark = pytest.mark.slow
PLANT = Path(__file__).parent / "data" / "two_zones_plant.yaml"
CONTROLS = Path(__file__).resolve().parents[2] / "baselines" / "controls" / "iec62443-3-3.yaml"


def attest_organisational_requirements(path: Path) -> None:
    controls = yaml.safe_load(CONTROLS.read_text())["controls"]
    attestations = [
        {"id": f"ATT-{c['id'].replace(' ', '-')}", "requirement": c["id"], "status": "met",
         "evidence": [{"type": "procedure", "uri": "evidence/procedure.pdf",
                       "date": "2026-01-05"}],
         "attested_by": {"name": "T. Tester", "role": "OT security lead"},
         "valid_until": "2099-12-31"}
        for c in controls if c.get("attestation")
    ]
    assert attestations
    path.write_text(yaml.safe_dump({"schema_version": 1, "attestations": attestations}))


def not_met(zone: dict) -> dict[str, set[tuple[str, str, str]]]:
    return {r["id"]: {(f["asset_id"], f["check_id"], f["status"]) for f in r["findings"]}
            for r in zone["failing"]}


async def test_hardened_and_weak_zones_reach_the_expected_levels(
        tmp_path: Path, mosquitto_url: str) -> None:
    attestations = tmp_path / "attestations.yaml"
    attest_organisational_requirements(attestations)
    settings = Settings(topic_prefix=f"otaudit-test/{uuid.uuid4().hex[:10]}",
                        attestations_file=attestations)
    result = await run_pipeline(tmp_path, broker_url=mosquitto_url, plant_file=PLANT,
                                settings=settings, use_examples=False, advisories=False)
    assert result.published == result.stored == 6
    zones = {z["zone"]: z for z in result.report["zones"]}
    hardened, weak = zones["hardened"], zones["weak"]

    # Hardened zone: SI reaches its target; the rest is held back by what the devices show:
    # IAC 1 - SR 1.2 at SL 2: the S7-1500 accepts classic S7comm sessions (no device auth);
    # UC 1 and RA 1 - SR 2.3 / SR 7.7 at SL 2: the switch has unused ports left up;
    # DC 0 - SR 4.1: a v3-only agent cannot show whether v1/v2c are off, so it stays unknown.
    assert hardened["sl_a"] == {"IAC": 1, "UC": 1, "SI": 2, "DC": 0, "RDF": 4, "TRE": 4,
                                "RA": 1}
    gaps = not_met(hardened)
    assert ("h-plc", "OTA-S7-003", "fail") in gaps["SR 1.2"]
    assert ("h-switch", "OTA-SNMP-005", "fail") in gaps["SR 2.3"]
    assert gaps["SR 4.1"] == {("h-switch", "OTA-SNMP-001", "unknown")}

    # Weak zone: no protection on the S7-1200, root login and telnet-era settings on the HMI,
    # SNMP v2c with default communities: FR1, FR2, FR4 and FR7 fail already at SL 1.
    assert weak["sl_a"] == {"IAC": 0, "UC": 0, "SI": 1, "DC": 0, "RDF": 4, "TRE": 4, "RA": 0}
    weak_gaps = not_met(weak)
    assert ("w-plc", "OTA-S7-001", "fail") in weak_gaps["SR 1.1"]
    assert ("w-switch", "OTA-SNMP-002", "fail") in weak_gaps["SR 1.5"]
    assert all(hardened["sl_a"][fr] >= weak["sl_a"][fr] for fr in hardened["sl_a"])
