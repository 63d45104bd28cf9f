"""Declared facts: what the inventory says about a zone, judged by checks like probed facts.

The inventory's conduits become one fact set per zone, evaluated as the pseudo-asset
``zone:<id>`` (kind ``zone``, probe ``inventory``; no real asset id contains ``:``). That
keeps one evaluator, one check format and one evidence trail: a finding on ``zone:cell-1``
names the conduit facts it judged, and its evidence is the inventory (its SHA-256 digest as
the observation id). Facts per zone:

``conduit.links``: one item per conduit of the zone with ``id``, ``peer`` (the other end),
``peer_type`` (zone or network), ``peer_trust`` (a zone is trusted; a network as declared),
``enforced`` and ``enforced_by`` (the enforcing assets), ``inbound``/``outbound`` (protocol
names allowed into/out of the zone; a bidirectional flow counts both ways).

An inventory that declares no conduits at all says nothing about them: the fact is then
*unknown* ("the inventory declares no conduits"), never an empty list that would pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from otaudit.server.baseline.model import AssetFacts, FactRecord
from otaudit.server.db import Base

PROBE = "inventory"
KIND = "zone"
NO_CONDUITS = "the inventory declares no conduits"


def zone_subject(zone: str) -> str:
    return f"zone:{zone}"


def zone_links(inventory: Mapping[str, Any], zone: str) -> list[dict[str, Any]]:
    """The ``conduit.links`` items of one zone from an inventory mapping (by alias)."""
    zones = {z["id"] for z in inventory.get("zones", [])}
    trust = {n["id"]: n.get("trust", "untrusted") for n in inventory.get("networks", [])}
    links = []
    for conduit in inventory.get("conduits", []):
        ends = conduit["between"]
        if zone not in ends:
            continue
        peer = ends[1] if ends[0] == zone else ends[0]
        inbound: list[str] = []
        outbound: list[str] = []
        for flow in conduit.get("flows", []):
            towards = flow["to"] == zone or flow.get("bidirectional")
            away = flow["from"] == zone or flow.get("bidirectional")
            if towards and flow["protocol"] not in inbound:
                inbound.append(flow["protocol"])
            if away and flow["protocol"] not in outbound:
                outbound.append(flow["protocol"])
        enforcers = list(conduit.get("enforced_by") or [])
        links.append({
            "id": conduit["id"], "peer": peer,
            "peer_type": "zone" if peer in zones else "network",
            "peer_trust": "trusted" if peer in zones else trust.get(peer, "untrusted"),
            "enforced": bool(enforcers), "enforced_by": ", ".join(enforcers),
            "inbound": sorted(inbound), "outbound": sorted(outbound),
        })
    return links


def declared_zone_facts(inventory: Mapping[str, Any] | None, digest: str,
                        loaded_at: datetime) -> list[AssetFacts]:
    """One fact set per zone of the inventory (empty without an inventory)."""
    if not inventory:
        return []
    declared = bool(inventory.get("conduits"))
    out = []
    for zone in inventory.get("zones", []):
        facts = AssetFacts(asset_id=zone_subject(zone["id"]), kind=KIND, zone=zone["id"],
                           probe_status={PROBE: "ok"})
        if declared:
            facts.facts["conduit.links"] = FactRecord(
                value=zone_links(inventory, zone["id"]), observation_id=f"inventory:{digest}",
                probe=PROBE, collected_at=loaded_at, evidence=[])
        else:
            facts.unknown["conduit.links"] = NO_CONDUITS
        out.append(facts)
    return out


def declared_part(inventory: Any) -> dict[str, Any]:
    """What the server keeps of an inventory: site, zones, networks, conduits, and per asset
    its id, kind, zone and name (never endpoints: no addresses or secret references)."""
    data = inventory.model_dump(mode="json", by_alias=True,
                                include={"site", "zones", "networks", "conduits"})
    data["assets"] = [{"id": a.id, "kind": a.kind.value, "zone": a.zone, "name": a.name}
                      for a in inventory.assets]
    return data


# --- storage: the inventory the server was last given, per site --------------------------


class InventoryRow(Base):
    """The declared part of the last inventory loaded for a site (``declared_part``)."""

    __tablename__ = "inventories"

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))  # SHA-256 of the inventory file
    source: Mapped[str] = mapped_column(String(500))  # the file name it was loaded from
    loaded_at: Mapped[datetime]
    document: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
