"""115 real SNMP walks (LibreNMS's test corpus) replayed and probed, identity vs the oracle."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from snmp_testkit import probe as snmp_probe

from tests.realdata.librenms import (
    CORPUS,
    REPORTS,
    agree,
    agreement_table,
    load_disagreements,
    normalise,
    run_corpus,
)

# 115 walks replayed and probed once for the module (the first test pays it): each probe
# confirms the silence of the SNMPv3 engine discovery with the full timeout, so the whole
# corpus takes 1-3 minutes on two busy cores; the suite-wide 120 s is for single tests.
pytestmark = [pytest.mark.realdata, pytest.mark.timeout(600)]
TARGET = 0.95


REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("OTAUDIT_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="module")
def outcomes():
    """The whole corpus, replayed once per test session (skip without ../shared)."""
    if not (SHARED / CORPUS).is_dir():
        pytest.skip(f"{SHARED / CORPUS} is absent: the LibreNMS walks are GPL-3.0 test data "
                    "read from ../shared only")
    os.environ["OTAUDIT_T_LIBRENMS"] = "public"

    async def probe(port: int):
        return await snmp_probe(port, version="v2c", community={"env": "OTAUDIT_T_LIBRENMS"},
                                request_timeout=2.0, retries=1, deadline=180,
                                op_timeout=60.0)

    result = asyncio.run(run_corpus(SHARED, probe))
    REPORTS.append(agreement_table(result))
    return result


def test_every_walk_replays_and_probes(outcomes):
    assert len(outcomes) == 115
    assert [(o.file, o.status, o.reason) for o in outcomes if o.status != "ok"] == []


def test_agreement_or_every_disagreement_explained(outcomes):
    explained = load_disagreements()
    present = [(o, name) for o in outcomes for name in o.compared]
    agreeing = [(o, name) for o, name in present if o.compared[name][2]]
    unexplained = [f"{o.file} {name}: oracle {o.compared[name][0]!r}, ours "
                   f"{o.compared[name][1]!r}" for o, name in present
                   if not o.compared[name][2] and (o.file, name) not in explained]
    stale = sorted(key for key in explained
                   if not any((o.file, n) == key and not o.compared[n][2] for o, n in present))
    assert unexplained == [], "disagreements not listed in librenms_disagreements.yaml"
    assert stale == [], "listed disagreements that now agree (remove them)"
    rate = len(agreeing) / len(present)
    assert rate >= TARGET or not unexplained, rate


def test_card_values_claimed_by_the_table_hold(outcomes):
    by_file = {o.file: o for o in outcomes}
    for (file, name), entry in load_disagreements().items():
        if "card_agrees" not in entry:
            continue
        card = by_file[file].facts.get("snmp.management_card") or {}
        oracle = by_file[file].compared[name][0]
        assert agree(name, oracle, card.get(entry["card_agrees"])), (file, name, card)


def test_management_cards_kept_apart_from_the_ups(outcomes):
    by_file = {o.file: o.facts for o in outcomes}
    smt = by_file["apc_smtl1000-nmc3.snmprec"]
    assert smt["identity.model"] == "Smart-UPS 1000" and smt["snmp.device_kind"] == "ups"
    assert smt["identity.serial"] == "AS2233161027"
    assert smt["snmp.management_card"]["firmware_version"] == "v2.3.1.1"
    assert smt["snmp.management_card"]["model"] == "AP9641"
    assert smt["identity.firmware_version"] != smt["snmp.management_card"]["firmware_version"]
    eaton = by_file["eatonups_eaton-connectups.snmprec"]
    assert eaton["identity.vendor"] == "Eaton" and eaton["identity.model"] == "PW9130 1000VA-R"
    assert eaton["snmp.management_card"]["model"].startswith("ConnectUPS")


def test_placeholders_are_not_identity(outcomes):
    by_file = {o.file: o for o in outcomes}
    teracom = by_file["teracom.snmprec"].facts
    assert "identity.name" not in teracom  # sysName 'SysName' is Teracom's default
    assert teracom["snmp.sys_location_set"] is False  # 'SysLocation'
    assert by_file["poweralert_2.snmprec"].facts.get("identity.serial") is None


def test_hirschmann_classic_and_eaton_identities(outcomes):
    """The classes the issue named: firmware/serial/model of a classic Hirschmann, Eaton."""
    by_file = {o.file: o.facts for o in outcomes}
    hm = by_file["hirschmann_ms4128.snmprec"]
    assert (hm["identity.vendor"], hm["identity.model"], hm["identity.firmware_version"],
            hm["identity.serial"]) == ("Hirschmann", "MS4128-L3E", "L3E-09.1.03",
                                       "943009201000201022")
    for name in ("eaton-mgeups_5px", "eaton-mgeups_93ps", "eatonpdu_2"):
        facts = by_file[f"{name}.snmprec"]
        assert facts["identity.vendor"] == "Eaton" and facts["identity.model"], name
        assert facts["snmp.device_kind"] in ("ups", "pdu")


def test_comparison_rules():
    assert agree("hardware", "Juniper EX3400-48T", "ex3400-48t")
    assert agree("version", "SW: L3E-09.1.03 CH: 1.04 BP: 101", "L3E-09.1.03")
    assert agree("version", "7.6.0", "v7.6.0")
    assert not agree("serial", "AB12 X", "AB12")
    assert not agree("version", "4.04", "4.0")
    assert not agree("hardware", "x", None)
    assert normalise(' "SiteBoss 572 " ') == "siteboss 572"


def test_listener_tables_of_real_devices(outcomes):
    """Modbus/TCP on a solar controller, HTTP on a time server: seen in the walks' TCP-MIB."""
    by_file = {o.file: o.facts for o in outcomes}
    mppt = by_file["morningstar-mppt.snmprec"]
    assert mppt["mgmt.modbus_listening"] is True and mppt["mgmt.http_enabled"] is True
    assert mppt["mgmt.telnet_enabled"] is False
    with_tables = [f for f, facts in by_file.items() if "services.listening" in facts]
    assert len(with_tables) >= 5
