"""The server keeps each site's declared inventory (zones, networks, conduits; never
endpoints) and gives report and gap the zones' conduit facts from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from otaudit.inventory import load_inventory
from otaudit.server import store
from otaudit.server.db import init_db, make_engine, session_factory

INVENTORY = """\
site: plant-a
zones:
  - {id: cell-1, sl_t: 2}
networks:
  - {id: internet}
assets:
  - {id: plc-1, kind: plc, zone: cell-1,
     endpoints: {modbus: {host: 10.0.0.5}, snmp: {host: 10.0.0.5, community: {env: SECRET_VAR}}}}
conduits:
  - id: c-9
    between: [cell-1, internet]
    flows: [{protocol: any, from: internet, to: cell-1}]
"""


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_record_and_read_back_declared_facts(database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(INVENTORY)
    inventory, _ = load_inventory(path)
    engine = make_engine(database_url)
    init_db(engine)
    with session_factory(engine).begin() as session:
        store.record_inventory(session, inventory, "f" * 64, str(path))
        store.record_inventory(session, inventory, "e" * 64, str(path))  # replaces
    with session_factory(engine)() as session:
        rows = store.declared_inventories(session)
        facts = store.declared_zone_facts(session)
        other_zone = store.declared_zone_facts(session, "nosuch")
    engine.dispose()
    assert [(r.site, r.digest) for r in rows] == [("plant-a", "e" * 64)]
    assert "SECRET_VAR" not in str(rows[0].document) and "10.0.0.5" not in str(rows[0].document)
    assert rows[0].document["assets"] == [{"id": "plc-1", "kind": "plc", "zone": "cell-1",
                                           "name": None}]
    assert other_zone == []
    (zone,) = facts
    assert zone.asset_id == "zone:cell-1"
    (link,) = zone.facts["conduit.links"].value
    assert (link["peer"], link["peer_trust"], link["enforced"], link["inbound"]) == (
        "internet", "untrusted", False, ["any"])
