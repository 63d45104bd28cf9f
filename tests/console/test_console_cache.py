"""The console's gap is cached (``services.gap.EvaluationCache``) but never stale: a new
observation, a new or expired exception, a changed SL-T or a new day is seen on the next
request, and an unchanged site is served from the cache (hits counted)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from test_console_pages import C, csrf_of, exception_form, login

from otaudit.inventory import Inventory
from otaudit.server import store
from otaudit.server.baseline.waivers import ExceptionRecord
from otaudit.server.db import make_engine, session_factory
from otaudit.server.ingest import Ingestor
from otaudit.server.services import gap
from otaudit.server.services.policy import Policy, site_policy

from support.api import FACTS, Api
from support.observations import make_observation


def zone_row(page: str, zone: str) -> list[str]:
    """The overview's cells of ``zone``'s row (assets, SL-T, proven, reachable, assessed)."""
    row = re.search(rf'>{zone}</a></th>(.*?)</tr>', page, re.S)
    assert row, f"no row of {zone}"
    return re.findall(r"<td[^>]*>([^<]*)</td>", row.group(1))


def ingest(api: Api, *observations: object) -> None:
    engine = make_engine(api.url)
    Ingestor(engine).ingest([(f"otaudit/v1/{o.site}/{o.collector_id}/obs/{o.asset.id}",
                              o.to_json()) for o in observations])
    engine.dispose()


def test_unchanged_site_is_a_hit_and_a_new_observation_is_seen_at_once(api: Api) -> None:
    cache = api.client.app.state.evaluations
    client = login(api, "viewer-plant-a")
    first = client.get(f"{C}/sites").text
    misses = cache.misses
    assert zone_row(client.get(f"{C}/sites").text, "cell-1") == zone_row(first, "cell-1")
    assert (cache.hits, cache.misses) == (1, misses)  # nothing changed: served from the cache
    assert zone_row(first, "cell-1")[0] == "2"
    ingest(api, make_observation(asset="plc-3", facts=FACTS["plant-a"], minutes=2))
    after = client.get(f"{C}/sites").text
    assert cache.misses == misses + 2  # the site's key, then cell-1's part (changed)
    assert zone_row(after, "cell-1")[0] == "3"  # plc-3 counted on the next request
    # another site's ingest changes nothing of plant-a's key, but plant-a's own does
    ingest(api, make_observation(asset="plc-9", site="plant-b", collector="c-plant-b",
                                 facts=FACTS["plant-b"], minutes=3))
    assert zone_row(client.get(f"{C}/sites").text, "cell-1")[0] == "3"
    assert (cache.hits, cache.misses) == (2, misses + 2)


def test_an_exception_changes_the_cached_zone_on_the_next_request(api: Api) -> None:
    client = login(api, "auditor-plant-a")
    zone_url = f"{C}/sites/plant-a/zones/cell-1"
    reachable = lambda: re.search(r'id="sl-a-reachable">([^<]*)',  # noqa: E731
                                  client.get(zone_url).text).group(1)
    overview = lambda: zone_row(client.get(f"{C}/sites").text, "cell-1")[3]  # noqa: E731
    before, before_overview = reachable(), overview()
    assert before == reachable() and before.startswith("IAC 0 · UC 0")  # cached, same
    csrf = csrf_of(client, f"{C}/sites/plant-a/risks")
    assert client.post(f"{C}/sites/plant-a/risks", data=exception_form(csrf),
                       follow_redirects=False).status_code == 303
    assert reachable().startswith("IAC 4 · UC 4") and overview() != before_overview
    assert client.post(f"{C}/sites/plant-a/risks/X-1/expire", data={"csrf": csrf},
                       follow_redirects=False).status_code == 303
    assert reachable() == before and overview() == before_overview


def test_an_exception_written_through_the_api_and_a_new_sl_t_are_seen(api: Api) -> None:
    client = login(api, "viewer-plant-a")
    before = zone_row(client.get(f"{C}/sites").text, "cell-1")
    record = {"id": "API-1", "type": "compensating_control", "scope": {
        "zone": "cell-1", "checks": ["OTA-MB-001"]}, "control": "gateway",
        "justification": "filters FC", "owner": "OT lead", "expires": "2099-01-01"}
    made = api.client.post("/api/v1/sites/plant-a/exceptions", json={"record": record},
                           headers=api.auth("plant-a", "auditor"))
    assert made.status_code in (200, 201), made.text
    with_exception = zone_row(client.get(f"{C}/sites").text, "cell-1")
    assert with_exception[3] != before[3]  # reachable SL-A
    engine = make_engine(api.url)
    with session_factory(engine).begin() as session:
        store.upsert_zones(session, Inventory.model_validate(
            {"site": "plant-a", "zones": [{"id": "cell-1", "sl_t": 3}]}))
    engine.dispose()
    raised = zone_row(client.get(f"{C}/sites").text, "cell-1")
    assert raised[1].startswith("IAC 3") and with_exception[1].startswith("IAC 2")


def test_an_exception_expires_with_the_date_not_with_the_cache(api: Api) -> None:
    state = api.client.app.state
    cache = gap.EvaluationCache()
    last_day = datetime(2030, 5, 1, 23, 59, tzinfo=UTC)
    exception = ExceptionRecord.model_validate({
        "id": "D-1", "type": "compensating_control", "control": "gateway",
        "scope": {"zone": "cell-1", "checks": ["OTA-MB-001"]}, "justification": "filters FC",
        "owner": "OT lead", "expires": last_day.date().isoformat()})
    with state.sessions() as session:
        policy = site_policy(session, "plant-a", state.baseline)
        policy = Policy([*policy.exceptions, exception], policy.attestations)

        def reachable(now: datetime) -> dict[str, int]:
            evaluation = gap.cached_gap_evaluation(session, "plant-a", state.baseline, policy,
                                                   cache, now=now)
            return gap.zone_summaries(evaluation)[0]["sl_a_reachable"]

        valid = reachable(last_day)
        assert reachable(last_day - timedelta(hours=20)) == valid  # same day: a hit
        assert (cache.hits, cache.misses) == (1, 2)  # the site's key, then cell-1's part
        expired = reachable(last_day + timedelta(minutes=1))  # the next day
        assert cache.misses == 4 and valid["IAC"] > expired["IAC"]
        assert gap.zone_summaries(gap.gap_evaluation(
            session, "plant-a", state.baseline, policy, now=last_day + timedelta(minutes=1))
        )[0]["sl_a_reachable"] == expired


def test_the_cache_keeps_its_size() -> None:
    cache = gap.EvaluationCache(size=2)
    for key in ("a", "b", "c"):
        cache.put((key,), object())  # type: ignore[arg-type]
    assert cache.get(("a",)) is None and cache.get(("c",)) is not None
    assert (cache.hits, cache.misses) == (1, 1)


def test_the_cached_overview_agrees_with_the_apis_gap_before_and_after_a_change(
        api: Api) -> None:
    """The console (cached) and ``GET …/gap`` (evaluated per request, as ``otaudit gap``)
    show the same levels, also right after an observation changed them."""
    from otaudit.server.console.views import levels

    client = login(api, "viewer-plant-a")

    def both() -> tuple[list[str], list[str]]:
        page = zone_row(client.get(f"{C}/sites").text, "cell-1")
        doc = api.client.get("/api/v1/sites/plant-a/gap",
                             headers=api.auth("plant-a", "viewer")).json()["zones"][0]
        return page[1:4], [levels(doc["sl_t"]), levels(doc["sl_a"]),
                           levels(doc["sl_reachable"])]

    before = both()
    assert before[0] == before[1] and both() == before  # the second overview is a hit
    ingest(api, *(make_observation(asset=a, facts={**FACTS["plant-a"],
                                                   "modbus.unauthenticated_read": False},
                                   minutes=5) for a in ("plc-1", "plc-2")))
    after = both()
    assert after[0] == after[1] and after != before


INVENTORY = """\
site: plant-a
zones:
  - {id: cell-1, sl_t: 2}
  - {id: cell-2, sl_t: 3}
networks:
  - {id: internet}
assets:
  - {id: plc-1, kind: plc, zone: cell-1, endpoints: {modbus: {host: 10.0.0.5}}}
conduits:
  - id: c-9
    between: [cell-1, internet]
    flows: [{protocol: any, from: internet, to: cell-1}]
"""


def test_a_site_put_together_from_its_zones_is_the_sites_evaluation(api: Api,
                                                                     tmp_path: Path) -> None:
    """Zones, declared conduits, an asset in a zone without SL-T, an asset that moved
    zone (its older row of another probe stays in the old zone), a zone-scoped exception:
    the zoned evaluation equals ``gap_evaluation``; after one zone changed, only that zone
    is evaluated again, and the result still equals."""
    from otaudit.inventory import load_inventory
    from otaudit.server.reporting.context import file_digest

    path = tmp_path / "plant.yaml"
    path.write_text(INVENTORY)
    inventory, _ = load_inventory(path)
    engine = make_engine(api.url)
    with session_factory(engine).begin() as session:
        store.upsert_zones(session, inventory)
        store.record_inventory(session, inventory, file_digest(path) or "", str(path))
    engine.dispose()
    facts = FACTS["plant-a"]
    ingest(api, make_observation(asset="plc-2", probe="snmp", facts={"snmp.v1_enabled": True},
                                 minutes=2),  # plc-2's snmp row stays in cell-1 ...
           make_observation(asset="plc-2", zone="cell-2", facts=facts, minutes=3),  # ... moved
           make_observation(asset="plc-5", zone="cell-2", facts=facts, minutes=3),
           make_observation(asset="plc-7", zone="nowhere", facts=facts, minutes=3))
    state = api.client.app.state
    cache = gap.EvaluationCache()
    now = datetime(2030, 1, 1, tzinfo=UTC)
    exception = ExceptionRecord.model_validate({
        "id": "Z-1", "type": "compensating_control", "control": "gateway",
        "scope": {"zone": "cell-2", "checks": ["OTA-MB-001"]}, "justification": "filters FC",
        "owner": "OT lead", "expires": "2099-01-01"})

    def both() -> tuple[dict, dict]:  # type: ignore[type-arg]
        with state.sessions() as session:
            policy = site_policy(session, "plant-a", state.baseline)
            policy = Policy([*policy.exceptions, exception], policy.attestations)
            whole = gap.gap_evaluation(session, "plant-a", state.baseline, policy, now=now)
            zoned = gap.zoned_gap_evaluation(session, "plant-a", state.baseline, policy, cache,
                                             now)
        return whole.model_dump(mode="json"), zoned.model_dump(mode="json")

    whole, zoned = both()
    assert [z["zone"] for z in whole["zones"]] == ["cell-1", "cell-2"]
    assert any("nowhere" in w for w in whole["warnings"])
    assert {f["zone"] for f in whole["findings"] if f["asset_id"] == "plc-2"} == {"cell-2"}
    assert zoned == whole
    assert cache.misses == 3  # cell-1, cell-2, nowhere
    ingest(api, make_observation(asset="plc-5", zone="cell-2",
                                 facts={**facts, "modbus.unauthenticated_read": False},
                                 minutes=4))
    changed, zoned = both()
    assert zoned == changed and changed != whole
    assert (cache.hits, cache.misses) == (2, 4)  # only cell-2 again
