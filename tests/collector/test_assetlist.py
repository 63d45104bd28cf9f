"""Asset lists: CSV and XLSX in (errors with row and column), CSV out, round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from otaudit.cli.main import app
from otaudit.collector.assetlist import export_csv, import_asset_list, load_mapping
from otaudit.collector.targets import load_plan
from otaudit.errors import InputError
from otaudit.inventory import Inventory

MAPPING = """\
site: plant-a
columns:
  id: Asset tag
  name: Description
  kind: {column: Type, values: {PLC: plc, Switch: switch, HMI: hmi}}
  zone: Zone
  vendor: Manufacturer
  model: Model
  host: IP address
  protocol: Protocol
  port: Port
defaults: {protocol: modbus}
endpoint_options:
  snmp: {version: v2c, community: {env: SNMP_COMMUNITY}}
zones: {cell-1: 3}
"""
HEADER = ["Asset tag", "Description", "Type", "Zone", "Manufacturer", "Model", "IP address",
          "Protocol", "Port"]
ROWS = [
    ["plc-17", "Labeller", "PLC", "cell-1", "Siemens", "CPU 1214C", "10.1.2.17", "s7", ""],
    ["plc-18", "Filler", "PLC", "cell-1", "Schneider Electric", "M340", "10.1.2.18", "", "5020"],
    ["sw-3", "Cell switch", "Switch", "control", "Siemens", "XC208", "10.1.0.3", "snmp", ""],
    ["sw-3", "Cell switch", "Switch", "control", "Siemens", "XC208", "10.1.0.3", "ssh", ""],
]


def _csv(tmp_path: Path, rows: list[list[str]], sep: str = ",") -> Path:
    path = tmp_path / "assets.csv"
    path.write_text("\n".join(sep.join(r) for r in [HEADER, *rows]) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def mapping(tmp_path: Path) -> Path:
    path = tmp_path / "mapping.yaml"
    path.write_text(MAPPING)
    return path


@pytest.mark.parametrize("sep", [",", ";"])
def test_csv_import(tmp_path: Path, mapping: Path, sep: str) -> None:
    data = import_asset_list(_csv(tmp_path, ROWS, sep), load_mapping(mapping))
    inventory = Inventory.model_validate(data)
    assert [a.id for a in inventory.assets] == ["plc-17", "plc-18", "sw-3"]
    assert {z.id: z.sl_t.IAC for z in inventory.zones} == {"cell-1": 3, "control": 2}
    plc18 = inventory.asset("plc-18")
    assert list(plc18.endpoints) == ["modbus"] and plc18.endpoints["modbus"].port == 5020
    sw3 = inventory.asset("sw-3")
    assert sorted(sw3.endpoints) == ["snmp", "ssh"]
    assert sw3.endpoints["snmp"].options["community"] == {"env": "SNMP_COMMUNITY"}


def test_every_problem_names_row_and_column(tmp_path: Path, mapping: Path) -> None:
    rows = [
        ["plc-1", "x", "Robot", "cell-1", "", "", "10.0.0.1", "", ""],   # row 2: unknown type
        ["plc-2", "x", "PLC", "", "", "", "10.0.0.2", "", ""],           # row 3: no zone
        ["plc-3", "x", "PLC", "cell-1", "", "", "10.0.0.3", "", "99999"],  # row 4: bad port
        ["plc-4", "x", "PLC", "cell-1", "", "", "10.0.0.4", "", ""],
        ["plc-4", "x", "PLC", "cell-1", "", "", "10.0.0.4", "modbus", ""],  # row 6: twice
    ]
    with pytest.raises(InputError) as caught:
        import_asset_list(_csv(tmp_path, rows), load_mapping(mapping))
    problems = caught.value.problems
    assert "row 2, column 'Type': 'Robot' is not one of PLC, Switch, HMI" in problems
    assert "row 3, column 'Zone': empty (zone is required)" in problems
    assert "row 4, column 'Port': '99999' is not a port (1-65535)" in problems
    assert "row 6: asset 'plc-4' has a second modbus endpoint" in problems


def test_a_missing_column_and_a_bad_mapping(tmp_path: Path, mapping: Path) -> None:
    path = tmp_path / "assets.csv"
    path.write_text("Asset tag,Zone\nplc-1,cell-1\n")
    with pytest.raises(InputError, match=r"column 'Type' \(for kind\) is not in the header"):
        import_asset_list(path, load_mapping(mapping))
    bad = tmp_path / "bad.yaml"
    bad.write_text("site: a\ncolumns: {colour: Colour}\n")
    with pytest.raises(InputError) as caught:
        load_mapping(bad)
    assert "columns.colour: not an inventory field" in str(caught.value)
    assert "columns: 'id' needs a column or a default" in str(caught.value)


def test_xlsx_import_with_numbers_as_cells(tmp_path: Path, mapping: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(HEADER)
    for row in ROWS:
        sheet.append([int(c) if c.isdigit() else c for c in row])
    path = tmp_path / "assets.xlsx"
    book.save(path)
    data = import_asset_list(path, load_mapping(mapping))
    assert Inventory.model_validate(data).asset("plc-18").endpoints["modbus"].port == 5020
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(InputError, match="cannot read as XLSX"):
        import_asset_list(broken, load_mapping(mapping))


def test_cli_import_validates_and_export_round_trips(tmp_path: Path, mapping: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "inventory.yaml"
    mapping.write_text(MAPPING.replace(", community: {env: SNMP_COMMUNITY}", ""))
    done = runner.invoke(app, ["inventory", "import", str(_csv(tmp_path, ROWS)), "--mapping",
                               str(mapping), "--out", str(out)])
    assert done.exit_code == 2, done.output  # the probe's own options are checked too
    assert "endpoints.snmp" in done.output and "needs a community" in done.output
    assert not out.exists()
    mapping.write_text(MAPPING)
    done = runner.invoke(app, ["inventory", "import", str(_csv(tmp_path, ROWS)), "--mapping",
                               str(mapping), "--out", str(out)])
    assert done.exit_code == 0, done.output
    inventory, plans = load_plan(out)
    assert sum(len(p.jobs) for p in plans) == 4
    exported = runner.invoke(app, ["inventory", "export", str(out)])
    assert exported.exit_code == 0
    lines = exported.output.splitlines()
    assert lines[0] == "id,name,kind,zone,vendor,model,protocol,host,port,schedule,tags"
    assert "plc-18,Filler,plc,cell-1,Schneider Electric,M340,modbus,10.1.2.18,5020,default," \
        in lines
    assert export_csv(inventory).count("\n") == 5
