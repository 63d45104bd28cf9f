"""Sites and their zones as stored."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from otaudit.server import store
from otaudit.server.db import AssetRow, ZoneRow


def list_sites(session: Session, only: set[str] | None = None) -> list[dict[str, Any]]:
    """Every site (or those in ``only``) with its number of zones and assets, by name."""
    zones = dict(session.execute(sa.select(ZoneRow.site, sa.func.count())
                                 .group_by(ZoneRow.site)).tuples().all())
    assets = dict(session.execute(sa.select(AssetRow.site, sa.func.count())
                                  .group_by(AssetRow.site)).tuples().all())
    return [{"site": s, "zones": zones.get(s, 0), "assets": assets.get(s, 0)}
            for s in store.sites(session) if only is None or s in only]


def site_exists(session: Session, site: str) -> bool:
    return site in store.sites(session)


def zone_exists(session: Session, site: str, zone: str) -> bool:
    return zone in store.known_zones(session, site)
