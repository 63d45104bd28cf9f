"""Storage: idempotent on observation id; latest observation per probe wins; both insert
paths store the same rows; SQLite + PostgreSQL."""

from __future__ import annotations

import json

import sqlalchemy as sa

from otaudit.observation import AssetKind, AssetRef, utcnow
from otaudit.server import store
from otaudit.server.db import AssetRow, ObservationRow, init_db, make_engine, session_factory

from support.observations import make_observation


def test_same_observation_twice_is_stored_once(database_url: str) -> None:
    engine = make_engine(database_url)
    init_db(engine)
    sessions = session_factory(engine)
    obs = make_observation(facts={"identity.vendor": "Schneider Electric"})
    with sessions.begin() as session:
        assert store.store_observation(session, obs, utcnow()) is True
    with sessions.begin() as session:
        assert store.store_observation(session, obs, utcnow()) is False
    with sessions() as session:
        assert session.query(ObservationRow).count() == 1
    engine.dispose()


def test_latest_facts_merge_probes_and_prefer_newest(database_url: str) -> None:
    engine = make_engine(database_url)
    init_db(engine)
    old = make_observation(minutes=0, facts={"identity.firmware_version": "V1.0"})
    new = make_observation(minutes=10, facts={"identity.firmware_version": "V2.0"},
                           unknown={"modbus.device_id_conformity": "not sent"})
    snmp = make_observation(minutes=5, probe="snmp", facts={"snmp.v1_enabled": True})
    other = make_observation(asset="plc-2", facts={"identity.vendor": "Acme"})
    with session_factory(engine).begin() as session:
        for obs in (new, old, snmp, other):
            store.store_observation(session, obs, utcnow())
    with session_factory(engine)() as session:
        facts = {a.asset_id: a for a in store.latest_asset_facts(session)}
    plc = facts["plc-1"]
    assert plc.facts["identity.firmware_version"].value == "V2.0"
    assert plc.facts["identity.firmware_version"].observation_id == str(new.observation_id)
    assert plc.facts["snmp.v1_enabled"].probe == "snmp"
    assert plc.unknown == {"modbus.device_id_conformity": "not sent"}
    assert plc.probe_status == {"modbus": "ok", "snmp": "ok"}
    assert set(facts) == {"plc-1", "plc-2"}
    engine.dispose()


def test_both_insert_paths_store_the_same_rows(database_url: str) -> None:
    """A batch of new ids (PostgreSQL: one COPY) and a batch with a stored id (the INSERT …
    ON CONFLICT it falls back to) store the same columns, payload and times exactly."""
    engine = make_engine(database_url)
    init_db(engine)
    sessions = session_factory(engine)
    fresh = [make_observation(asset=f"plc-{i}", minutes=i, facts={"identity.vendor": "Acmé \"x\""})
             for i in range(3)]
    later = make_observation(asset="plc-9", minutes=30, facts={"identity.vendor": "Acme"})
    received = utcnow()
    with sessions.begin() as session:
        assert store.store_observations(session, fresh, received) == {
            str(o.observation_id) for o in fresh}
    with sessions.begin() as session:  # fresh[0] is stored: the whole batch takes the INSERT
        assert store.store_observations(session, [fresh[0], later], received) == {
            str(later.observation_id)}
    with sessions() as session:
        rows = {r.observation_id: r for r in session.scalars(sa.select(ObservationRow))}
    assert len(rows) == 4
    for obs in [*fresh, later]:
        row = rows[str(obs.observation_id)]
        assert (row.site, row.collector_id, row.asset_id, row.asset_kind, row.zone, row.probe,
                row.status) == (obs.site, obs.collector_id, obs.asset.id, obs.asset.kind.value,
                                obs.asset.zone, obs.probe, obs.status.value)
        assert [store._aware(t) for t in (row.started_at, row.finished_at, row.received_at)] \
            == [obs.started_at, obs.finished_at, received]
        assert row.payload == json.loads(obs.to_json())
    engine.dispose()


def test_assets_are_upserted_as_if_one_by_one(database_url: str) -> None:
    engine = make_engine(database_url)
    init_db(engine)
    sessions = session_factory(engine)
    named = make_observation(asset="plc-1", minutes=10).model_copy(
        update={"asset": AssetRef(id="plc-1", kind=AssetKind.PLC, zone="cell-1",
                                  name='Presse "Nord" – 1')})
    with sessions.begin() as session:
        store.upsert_assets(session, [named, make_observation(asset="hmi-1", kind=AssetKind.HMI)])
    older = make_observation(asset="plc-1", minutes=0, zone="cell-2")  # older, no name
    with sessions.begin() as session:
        store.upsert_assets(session, [older])
    with sessions() as session:
        assets = {a.asset_id: a for a in session.scalars(sa.select(AssetRow))}
    plc = assets["plc-1"]
    assert (plc.zone, plc.kind, plc.name) == ("cell-2", "plc", None)  # the last one's
    assert store._aware(plc.last_seen) == named.finished_at  # the newest finish time
    assert (assets["hmi-1"].kind, assets["hmi-1"].name, assets["hmi-1"].site) == (
        "hmi", None, "plant-a")
    engine.dispose()


def test_one_zone_lists_the_assets_now_in_it_with_their_newest_facts(database_url: str) -> None:
    """An asset is in the zone of its newest observation: one that moved from cell-1 to
    cell-2 is not listed in cell-1 with its old facts (its other probe's older observation,
    still tagged cell-1, comes with it to cell-2)."""
    engine = make_engine(database_url)
    init_db(engine)
    moved_old = make_observation(zone="cell-1", facts={"identity.firmware_version": "old"})
    snmp_old = make_observation(zone="cell-1", probe="snmp", minutes=1,
                                facts={"snmp.v1_enabled": True})
    moved_new = make_observation(zone="cell-2", minutes=10,
                                 facts={"identity.firmware_version": "new"})
    stays = make_observation(asset="plc-2", zone="cell-1", facts={"identity.vendor": "Acme"})
    with session_factory(engine).begin() as session:
        for obs in (moved_old, snmp_old, moved_new, stays):
            store.store_observation(session, obs, utcnow())
    with session_factory(engine)() as session:
        cell1 = {a.asset_id: a for a in store.latest_asset_facts(session, zone="cell-1")}
        cell2 = {a.asset_id: a for a in store.latest_asset_facts(session, zone="cell-2")}
        rows1 = store.latest_observations(session, zone="cell-1")
        rows2 = store.latest_observations(session, zone="cell-2")
        everything = {a.asset_id: a.zone for a in store.latest_asset_facts(session)}
    assert set(cell1) == {"plc-2"}
    assert set(cell2) == {"plc-1"}
    assert cell2["plc-1"].facts["identity.firmware_version"].value == "new"
    assert cell2["plc-1"].facts["snmp.v1_enabled"].value is True  # the asset's other probe
    assert {r.observation_id for r in rows1} == {str(stays.observation_id)}
    assert {r.observation_id for r in rows2} == {str(moved_new.observation_id),
                                                 str(snmp_old.observation_id)}
    assert everything == {"plc-1": "cell-2", "plc-2": "cell-1"}
    engine.dispose()
