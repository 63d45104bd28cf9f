"""Inventory validation: every bad input names the file, the field and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from otaudit.errors import InputError
from otaudit.inventory import load_inventory

GOOD = """\
site: plant-a
zones:
  - id: cell-1
    sl_t: 2
  - id: dmz
    sl_t: {IAC: 3, UC: 2, SI: 2, DC: 1, RDF: 2, TRE: 1, RA: 2}
assets:
  - id: plc-1
    kind: plc
    zone: cell-1
    endpoints:
      modbus: {host: 10.0.0.5, port: 502, unit: 1}
  - id: sw-1
    kind: switch
    zone: dmz
    endpoints:
      snmp: {host: sw-1.plant.example, community: {env: SW_COMMUNITY}}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    return path


def problems_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(InputError) as info:
        load_inventory(write(tmp_path, text))
    message = str(info.value)
    assert str(tmp_path / "inventory.yaml") in message
    return message


def test_valid_inventory_loads_levels_and_endpoint_options(tmp_path: Path) -> None:
    inv, _ = load_inventory(write(tmp_path, GOOD))
    assert inv.zone("cell-1").sl_t.as_dict() == dict.fromkeys(
        ("IAC", "UC", "SI", "DC", "RDF", "TRE", "RA"), 2)
    assert inv.zone("dmz").sl_t.IAC == 3
    assert inv.asset("plc-1").endpoints["modbus"].options == {"unit": 1}


def test_unknown_field_names_field_and_line(tmp_path: Path) -> None:
    text = GOOD.replace("    kind: switch\n", "    kind: switch\n    colour: red\n")
    message = problems_of(tmp_path, text)
    assert "assets.1.colour" in message and "unknown field" in message
    assert "line 15" in message


def test_bad_address_is_reported(tmp_path: Path) -> None:
    message = problems_of(tmp_path, GOOD.replace("10.0.0.5", "10.0.0.999"))
    assert "assets.0.endpoints.modbus.host" in message
    assert "neither an IP address nor a host name" in message


def test_duplicate_asset_id_is_reported(tmp_path: Path) -> None:
    message = problems_of(tmp_path, GOOD.replace("id: sw-1", "id: plc-1"))
    assert "duplicate asset id 'plc-1'" in message


def test_unknown_zone_and_bad_level(tmp_path: Path) -> None:
    assert "unknown zone 'nowhere'" in problems_of(
        tmp_path, GOOD.replace("zone: dmz\n    endpoints", "zone: nowhere\n    endpoints"))
    assert "zones.0.sl_t" in problems_of(tmp_path, GOOD.replace("sl_t: 2", "sl_t: 7"))


def test_yaml_syntax_and_duplicate_keys_give_lines(tmp_path: Path) -> None:
    assert "line" in problems_of(tmp_path, "site: [unclosed\n")
    assert "line 2: duplicate key 'site'" in problems_of(tmp_path, "site: a\nsite: b\n")


def test_inline_secret_is_not_a_secret_reference(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from otaudit.secrets import SecretRef

    with pytest.raises(ValidationError):
        SecretRef.model_validate("public")
    with pytest.raises(ValidationError, match="exactly one"):
        SecretRef.model_validate({"env": "A", "file": "/tmp/x"})
