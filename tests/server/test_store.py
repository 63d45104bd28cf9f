"""Storage: idempotent on observation id; latest observation per probe wins; SQLite + PostgreSQL."""

from __future__ import annotations

from otaudit.observation import utcnow
from otaudit.server import store
from otaudit.server.db import ObservationRow, init_db, make_engine, session_factory

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
