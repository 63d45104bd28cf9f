"""Seeds an API test database: two sites with the same asset id, and users/tokens of each
role at each site."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from fastapi.testclient import TestClient

from otaudit.inventory import Inventory
from otaudit.server import store
from otaudit.server.db import init_db, make_engine, session_factory
from otaudit.server.ingest import Ingestor
from otaudit.server.services import accounts

from support.observations import make_observation

SITES = ("plant-a", "plant-b")
ROLES = ("viewer", "auditor", "admin")
FACTS = {
    "plant-a": {"identity.vendor": "Schneider Electric", "identity.firmware_version": "3.10",
                "modbus.unauthenticated_read": True},
    "plant-b": {"identity.vendor": "Siemens", "identity.firmware_version": "4.5.2",
                "modbus.unauthenticated_read": False},
}


@dataclass
class Api:
    """The client, the database URL and a token per (site, role)."""

    client: TestClient
    url: str
    tokens: dict[tuple[str, str], str] = field(default_factory=dict)

    def auth(self, site: str, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[site, role]}"}


def seed(url: str) -> dict[tuple[str, str], str]:
    """Two sites with zone cell-1 and asset plc-1 each; a user of each role per site."""
    engine = make_engine(url)
    init_db(engine)
    with session_factory(engine).begin() as session:
        for site in SITES:
            store.upsert_zones(session, Inventory.model_validate(
                {"site": site, "zones": [{"id": "cell-1", "sl_t": 2}]}))
    observations = [make_observation(site=site, collector=f"c-{site}", asset="plc-1",
                                     facts=FACTS[site]) for site in SITES]
    observations.append(make_observation(site="plant-a", collector="c-plant-a", asset="plc-2",
                                         facts=FACTS["plant-a"], minutes=1))
    result = Ingestor(engine).ingest(
        [(f"otaudit/v1/{o.site}/{o.collector_id}/obs/{o.asset.id}", o.to_json())
         for o in observations])
    assert result.stored == 3
    tokens = {}
    with session_factory(engine).begin() as session:
        for site in SITES:
            for role in ROLES:
                name = f"{role}-{site}"
                accounts.add_user(session, name, "a long password!", "test")
                accounts.grant(session, name, site, role, "test")
                tokens[site, role] = accounts.create_token(
                    session, name, site, role, timedelta(days=1), "test")[1]
    engine.dispose()
    return tokens


