"""Collectors and their last-seen: ``services.collectors`` (stored observations and the
server's ``Presence``), the state at the silent threshold (the alert's rule), and the sites
overview: each user sees only the collectors of their sites; an empty state says what to do."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from test_console_pages import C, login

from otaudit.inventory import Inventory
from otaudit.server import store
from otaudit.server.db import make_engine, session_factory
from otaudit.server.presence import Presence
from otaudit.server.services import accounts
from otaudit.server.services.collectors import collectors_by_site

from support.api import Api

T = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def states(api: Api, presence: Presence | None, now: datetime, sites: tuple[str, ...] = (
        "plant-a", "plant-b")) -> dict[str, dict[str, str]]:
    with api.client.app.state.sessions() as session:
        found = collectors_by_site(session, sites, presence, 60, 3, now=now)
    return {site: {c["collector"]: c["state"] for c in rows} for site, rows in found.items()}


def test_stored_observations_name_each_sites_collectors(api: Api) -> None:
    with api.client.app.state.sessions() as session:
        found = collectors_by_site(session, ["plant-a"], None, 60, 3)
    assert list(found) == ["plant-a"]  # only the sites asked for
    (row,) = found["plant-a"]
    assert (row["collector"], row["state"], row["source"]) == ("c-plant-a", "online",
                                                               "observations")
    assert row["silent_after_seconds"] == 180 and 0 <= row["quiet_seconds"] < 600
    later = datetime.fromisoformat(row["last_seen"]) + timedelta(seconds=180)
    assert states(api, None, later)["plant-a"] == {"c-plant-a": "silent"}


@pytest.mark.parametrize(("after", "state"), [(0, "offline"), (179, "offline"),
                                              (180, "silent"), (181, "silent")])
def test_silent_at_the_alerts_threshold_exactly(api: Api, after: int, state: str) -> None:
    presence = Presence(interval=60, intervals=3)
    presence.heard("plant-a", "gw-a", at=T, state="offline")
    now = T + timedelta(seconds=after)
    assert states(api, presence, now)["plant-a"]["gw-a"] == state
    alerted = [a.data["collector"] for a in presence.silent(now)]
    assert ("gw-a" in alerted) == (state == "silent")  # the alert rule agrees


def test_the_newest_source_wins_and_a_status_says_the_state(api: Api) -> None:
    presence = Presence(interval=60, intervals=3)
    presence.heard("plant-a", "c-plant-a", at=T - timedelta(days=3650), state="offline")
    presence.heard("plant-a", "gw-a", state="online")
    presence.heard("plant-b", "gw-b", state="online")
    with api.client.app.state.sessions() as session:
        found = collectors_by_site(session, ["plant-a"], presence, 60, 3)
    rows = {c["collector"]: c for c in found["plant-a"]}
    assert set(rows) == {"c-plant-a", "gw-a"}  # not plant-b's
    assert rows["c-plant-a"]["source"] == "observations"  # its stored arrival is newer
    assert (rows["gw-a"]["source"], rows["gw-a"]["state"]) == ("status", "online")


def test_the_overview_shows_only_the_users_sites_collectors(api: Api) -> None:
    presence = Presence(interval=60, intervals=3)
    presence.heard("plant-a", "gw-a", state="offline")
    presence.heard("plant-b", "gw-b", state="online")
    presence.heard("plant-b", "old-b", at=datetime.now(UTC) - timedelta(hours=2))
    api.client.app.state.presence = presence
    page_a = login(api, "viewer-plant-a").get(f"{C}/sites").text
    assert 'id="collector-plant-a-c-plant-a"' in page_a and "gw-a" in page_a
    assert re.search(r'id="collector-plant-a-gw-a">.*?st-collector-offline', page_a, re.S)
    assert "c-plant-b" not in page_a and "gw-b" not in page_a and "old-b" not in page_a
    page_b = login(api, "viewer-plant-b").get(f"{C}/sites").text
    assert "c-plant-a" not in page_b and "gw-a" not in page_b
    assert re.search(r'id="collector-plant-b-old-b">.*?st-collector-silent.*?2 h ago', page_b,
                     re.S)
    assert re.search(r'id="collector-plant-b-gw-b">.*?st-collector-online', page_b, re.S)
    assert "3 min (the collector_silent alert" in page_b


def test_a_site_without_collectors_says_how_to_get_one(api: Api) -> None:
    engine = make_engine(api.url)
    with session_factory(engine).begin() as session:
        store.upsert_zones(session, Inventory.model_validate(
            {"site": "plant-c", "zones": [{"id": "cell-1", "sl_t": 2}]}))
        accounts.grant(session, "viewer-plant-a", "plant-c", "viewer", "test")
    engine.dispose()
    page = login(api, "viewer-plant-a").get(f"{C}/sites").text
    assert "No collector has reported for plant-c yet" in page
    assert "otaudit collector run --inventory" in page
    assert 'id="collector-plant-a-c-plant-a"' in page  # plant-a's still listed
