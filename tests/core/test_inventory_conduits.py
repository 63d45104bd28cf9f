"""Conduits and networks in the inventory: the model, every reference problem with its line
(`otaudit inventory validate`), and the zone facts the server derives from them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from typer.testing import CliRunner

from otaudit.cli.main import app
from otaudit.errors import InputError
from otaudit.inventory import load_inventory
from otaudit.server.declared import NO_CONDUITS, declared_part, declared_zone_facts, zone_links

BASE = """\
site: plant-a
zones:
  - {id: cell-1, sl_t: 2}
  - {id: control, sl_t: 2}
networks:
  - {id: enterprise, trust: untrusted}
  - {id: historian-dmz, trust: trusted}
assets:
  - {id: plc-1, kind: plc, zone: cell-1, endpoints: {modbus: {host: 10.0.0.5}}}
  - {id: fw-1, kind: firewall, zone: control,
     endpoints: {snmp: {host: 10.0.0.1, community: {env: FW_COMMUNITY}}}}
  - {id: sw-1, kind: switch, zone: control,
     endpoints: {snmp: {host: 10.0.0.2, community: {env: FW_COMMUNITY}}}}
conduits:
"""
GOOD = BASE + """\
  - id: c-01
    between: [cell-1, control]
    enforced_by: sw-1
    flows:
      - {protocol: modbus, ports: [502], from: control, to: cell-1}
      - {protocol: snmp, from: cell-1, to: control, bidirectional: true}
  - id: c-02
    between: [control, enterprise]
    enforced_by: [fw-1]
    flows:
      - {protocol: https, ports: [443], from: enterprise, to: control}
      - {protocol: s7, from: enterprise, to: control}
  - id: c-03
    between: [cell-1, historian-dmz]
"""
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    return path


def validate(tmp_path: Path, text: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["inventory", "validate", str(write(tmp_path, text))])
    return result.exit_code, result.output


def test_conduits_load_and_validate(tmp_path: Path) -> None:
    inventory, _ = load_inventory(write(tmp_path, GOOD))
    c01, c02, _ = inventory.conduits
    assert c01.enforced_by == ["sw-1"] and c02.enforced_by == ["fw-1"]
    assert (c01.flows[0].source, c01.flows[0].to, c01.flows[0].ports) == ("control", "cell-1",
                                                                          [502])
    assert inventory.networks[0].trust == "untrusted"
    assert validate(tmp_path, GOOD) == (0, f"{tmp_path / 'inventory.yaml'}: ok (site plant-a, "
                                           "2 zones, 3 assets)\n")
    shown = CliRunner().invoke(app, ["inventory", "show", str(tmp_path / "inventory.yaml")])
    assert "network enterprise: untrusted" in shown.output
    assert ("conduit c-01: cell-1 - control, enforced by sw-1; modbus:502 control -> cell-1; "
            "snmp cell-1 <-> control") in shown.output
    as_json = CliRunner().invoke(app, ["inventory", "show", "--json",
                                       str(tmp_path / "inventory.yaml")])
    assert '"from": "control"' in as_json.output


@pytest.mark.parametrize(("conduit", "line", "problem"), [
    ("{id: c-9, between: [cell-1, cell-7]}", 15,
     "conduits.0.between.1 (line 15): unknown zone or network 'cell-7'; zones: cell-1, "
     "control; networks: enterprise, historian-dmz"),
    ("{id: c-9, between: [enterprise, historian-dmz]}", 15,
     "conduits.0.between (line 15): a conduit needs at least one zone"),
    ("{id: c-9, between: [cell-1, cell-1]}", 15,
     "conduits.0.between (line 15): a conduit joins two different ends"),
    ("{id: c-9, between: [cell-1, control], enforced_by: [fw-9]}", 15,
     "conduits.0.enforced_by.0 (line 15): unknown asset 'fw-9'"),
    ("{id: c-9, between: [cell-1, control], enforced_by: plc-1}", 15,
     "conduits.0.enforced_by (line 15): asset 'plc-1' is a plc; a conduit is enforced by a "
     "firewall, router or switch"),
    ("{id: c-9, between: [cell-1, control], flows: [{protocol: s7, from: enterprise, "
     "to: cell-1}]}", 15,
     "conduits.0.flows.0.from (line 15): 'enterprise' is not an end of conduit 'c-9' "
     "(cell-1 - control)"),
    ("{id: c-9, between: [cell-1, control], flows: [{protocol: s7, from: cell-1, "
     "to: cell-1}]}", 17, "conduits.0.flows.0 (line 15): 'from' and 'to' are the same end"),
    ("{id: c-9, between: [cell-1, control], flows: [{protocol: S7, from: control, "
     "to: cell-1}]}", 17, "conduits.0.flows.0.protocol (line 15): 'S7' is not a protocol name"),
    ("{id: c-9, between: [cell-1]}", 17, "conduits.0.between (line 15): List should have at "
     "least 2 items"),
])
def test_every_conduit_problem_has_its_line(tmp_path: Path, conduit: str, line: int,
                                            problem: str) -> None:
    text = BASE + f"  - {conduit}\n"
    code, output = validate(tmp_path, text)
    assert code == 1 and problem in output, output
    with pytest.raises(InputError):
        load_inventory(write(tmp_path, text))


def test_duplicate_conduit_and_network_ids(tmp_path: Path) -> None:
    text = BASE.replace("  - {id: historian-dmz, trust: trusted}\n",
                        "  - {id: enterprise}\n  - {id: control}\n") + \
        "  - {id: c-1, between: [cell-1, control]}\n  - {id: c-1, between: [cell-1, control]}\n"
    code, output = validate(tmp_path, text)
    assert code == 1
    assert "networks.1.id (line 7): duplicate id 'enterprise'" in output
    assert "networks.2.id (line 8): network id 'control' is also a zone id" in output
    assert "conduits.1.id (line 17): duplicate id 'c-1'" in output


def test_zone_links_and_declared_facts(tmp_path: Path) -> None:
    inventory, _ = load_inventory(write(tmp_path, GOOD))
    data = declared_part(inventory)
    assert "endpoints" not in str(data) and "FW_COMMUNITY" not in str(data)
    control = {link["id"]: link for link in zone_links(data, "control")}
    assert control["c-01"] == {"id": "c-01", "peer": "cell-1", "peer_type": "zone",
                               "peer_trust": "trusted", "enforced": True, "enforced_by": "sw-1",
                               "inbound": ["snmp"], "outbound": ["modbus", "snmp"]}
    assert control["c-02"]["peer_trust"] == "untrusted"
    assert control["c-02"]["inbound"] == ["https", "s7"]
    cell = {link["id"]: link for link in zone_links(data, "cell-1")}
    assert cell["c-03"] == {"id": "c-03", "peer": "historian-dmz", "peer_type": "network",
                            "peer_trust": "trusted", "enforced": False, "enforced_by": "",
                            "inbound": [], "outbound": []}
    facts = {f.zone: f for f in declared_zone_facts(data, "ab" * 32, NOW)}
    assert facts["control"].asset_id == "zone:control" and facts["control"].kind == "zone"
    record = facts["control"].facts["conduit.links"]
    assert record.observation_id == "inventory:" + "ab" * 32 and record.probe == "inventory"
    no_conduits = dict(data, conduits=[])
    unknown = declared_zone_facts(no_conduits, "x", NOW)
    assert all(f.unknown == {"conduit.links": NO_CONDUITS} and not f.facts for f in unknown)
    assert declared_zone_facts(None, "x", NOW) == []


def test_conduit_checks_decide_sr_5_1_and_5_2(tmp_path: Path) -> None:
    from otaudit.server.baseline import evaluate, load_baseline

    inventory, _ = load_inventory(write(tmp_path, GOOD))
    data = declared_part(inventory)
    facts = declared_zone_facts(data, "d" * 64, NOW)
    ev = evaluate(load_baseline(), {z.id: z.sl_t for z in inventory.zones}, facts, now=NOW)
    found = {(f.asset_id, f.check_id): f for f in ev.findings}
    assert found[("zone:control", "OTA-NET-001")].status == "pass"  # fw-1 on c-02
    net2 = found[("zone:control", "OTA-NET-002")]
    assert net2.status == "fail" and net2.evidence[0].observation_id == "inventory:" + "d" * 64
    assert found[("zone:cell-1", "OTA-NET-002")].status == "pass"
    control = ev.zone("control")
    rows = {r.id: r for r in control.requirements}
    assert rows["SR 5.2"].status == "fail" and rows["SR 5.1"].status == "pass"
    assert control.assets == 0  # declared facts are not assets
    assert any(r.source == "check" and r.id == "OTA-NET-002" for r in rows["SR 5.2"].why)
    # the same inventory without an enforcing device on c-02: SR 5.1 fails from SL 2 only
    data["conduits"][1]["enforced_by"] = []
    facts = declared_zone_facts(data, "d" * 64, NOW)
    for level, expected in ((1, "pass"), (2, "fail")):
        ev = evaluate(load_baseline(), {"control": level, "cell-1": level}, facts, now=NOW)
        assert {f.check_id: f.status for f in ev.findings
                if f.asset_id == "zone:control"}["OTA-NET-001"] == expected
