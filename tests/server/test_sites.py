"""A collector writes only where it belongs: sites are the first key, keys are bound to their
sites and assets, and the sender's clock alone never decides what is latest. SQLite and
PostgreSQL (``database_url``)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from otaudit.inventory import Inventory
from otaudit.observation import Observation, utcnow
from otaudit.server import store
from otaudit.server.db import (
    AssetRow,
    FindingRow,
    ObservationRow,
    RejectedMessage,
    ZoneRow,
    alembic_config,
    import_table_modules,
    init_db,
    make_engine,
    session_factory,
)
from otaudit.server.ingest import Ingestor
from otaudit.server.report import build_report, render_table
from otaudit.signing import Signer, Verifier, public_pem, write_enrolment

from support.observations import make_observation

WEAK = {"identity.vendor": "Schneider Electric", "modbus.device_id_readable": True}


def topic(obs: Observation) -> str:
    return f"otaudit/v1/{obs.site}/{obs.collector_id}/obs/{obs.asset.id}"


def zones(session: sa.orm.Session, site: str, level: int) -> None:
    store.upsert_zones(session, Inventory.model_validate(
        {"site": site, "zones": [{"id": "cell-1", "sl_t": level}]}))


def test_the_same_asset_and_zone_ids_in_two_sites_never_collide(database_url: str) -> None:
    engine = make_engine(database_url)
    init_db(engine)
    with session_factory(engine).begin() as session:
        zones(session, "plant-a", 1)
        zones(session, "plant-b", 3)
    a = make_observation(site="plant-a", collector="ca", asset="plc-1", facts=WEAK)
    b = make_observation(site="plant-b", collector="cb", asset="plc-1",
                         facts={"identity.vendor": "Siemens"}, zone="cell-1")
    result = Ingestor(engine).ingest([(topic(a), a.to_json()), (topic(b), b.to_json())])
    assert result.stored == 2
    assert result.assets == {("plant-a", "plc-1"), ("plant-b", "plc-1")}
    with session_factory(engine)() as session:
        assert {(r.site, r.asset_id) for r in session.scalars(sa.select(AssetRow))} == {
            ("plant-a", "plc-1"), ("plant-b", "plc-1")}
        assert {(r.site, r.zone_id, r.sl_t["IAC"]) for r in session.scalars(
            sa.select(ZoneRow))} == {("plant-a", "cell-1", 1), ("plant-b", "cell-1", 3)}
        vendors = {s: [f.facts["identity.vendor"].value for f in facts] for s, facts in
                   store.merge_site_facts(store.latest_observations(session)).items()}
        assert vendors == {"plant-a": ["Schneider Electric"], "plant-b": ["Siemens"]}
        sites = set(session.scalars(sa.select(FindingRow.site).distinct()))
        report = build_report(session)
        with pytest.raises(store.AmbiguousSite):
            store.load_zones(session)
        assert set(store.load_zones(session, "plant-b")) == {"cell-1"}
    assert sites == {"plant-a", "plant-b"}  # each evaluated over its own zones
    assets = {(x["site"], x["asset_id"]): x for x in report["assets"]}
    assert assets[("plant-a", "plc-1")]["identity"]["vendor"] == "Schneider Electric"
    assert assets[("plant-b", "plc-1")]["identity"]["vendor"] == "Siemens"
    assert {(z["site"], z["zone"]) for z in report["zones"]} == {("plant-a", "cell-1"),
                                                                 ("plant-b", "cell-1")}
    text = render_table(report)
    assert "[plant-a/cell-1] plc-1" in text and "[plant-b/cell-1] plc-1" in text
    engine.dispose()


def enrolled(tmp_path: Path, **scopes: tuple[list[str], list[str]] | None
             ) -> tuple[Verifier, dict[str, Signer]]:
    folder = tmp_path / "trusted"
    folder.mkdir()
    signers = {}
    for collector, scope in scopes.items():
        key = Ed25519PrivateKey.generate()
        (folder / f"{collector}.pub").write_bytes(public_pem(key.public_key()))
        if scope is not None:
            write_enrolment(folder / f"{collector}.scope", *scope)
        signers[collector] = Signer(key, collector)
    return Verifier.from_dir(folder), signers


def test_a_key_writes_only_its_enrolled_sites_and_assets(
        tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    engine = make_engine(database_url)
    init_db(engine)
    with caplog.at_level(logging.WARNING, logger="otaudit.server.ingest"):
        verifier, signers = enrolled(tmp_path, c1=(["plant-a"], ["plc-*"]),
                                     c2=(["plant-a"], ["sw-*"]), c3=None)
        ingestor = Ingestor(engine, verifier=verifier)
    assert "collector c3 has a trusted key but no enrolment scope file" in caplog.text
    own = make_observation(collector="c1", asset="plc-0004", facts={"identity.serial": "S1"})
    forged = make_observation(collector="c2", asset="plc-0004", facts={"identity.serial": "X"})
    other_site = make_observation(collector="c1", site="plant-b", asset="plc-0004")
    sw = make_observation(collector="c2", asset="sw-1", kind=own.asset.kind)
    unbound = make_observation(collector="c3", asset="plc-9")
    batch = [(topic(o), signers[o.collector_id].sign(o, seq))
             for seq, o in enumerate((own, forged, other_site, sw, unbound))]
    result = ingestor.ingest(batch)
    assert (result.stored, result.rejected) == (2, 3)
    assert [(o.outcome, o.code) for o in result.outcomes] == [
        ("stored", None), ("rejected", "not_enrolled"), ("rejected", "not_enrolled"),
        ("stored", None), ("rejected", "not_enrolled")]
    with engine.connect() as conn:
        reasons = list(conn.scalars(sa.select(RejectedMessage.reason)
                                    .order_by(RejectedMessage.id)))
        serials = list(conn.scalars(sa.select(ObservationRow.payload)
                                    .where(ObservationRow.asset_id == "plc-0004")))
    assert "asset 'plc-0004' is not among its enrolled assets ['sw-*']" in reasons[0]
    assert "site 'plant-b' is not among its enrolled sites ['plant-a']" in reasons[1]
    assert "no enrolment scope" in reasons[2]
    assert [p["facts"]["identity.serial"]["value"] for p in serials] == ["S1"]
    assert ingestor.counts["forged"] == 3 and ingestor.counts["rejected.not_enrolled"] == 3
    engine.dispose()


def test_an_observation_from_the_future_is_rejected_and_cannot_shadow_later_ones(
        database_url: str) -> None:
    engine = make_engine(database_url)
    init_db(engine)
    now = utcnow()
    ingestor = Ingestor(engine, clock_tolerance=timedelta(minutes=5))

    def at(when: datetime, vendor: str) -> Observation:
        obs = make_observation(asset="plc-1", facts={"identity.vendor": vendor})
        return obs.model_copy(update={"started_at": when - timedelta(seconds=1),
                                      "finished_at": when})

    year_2099 = at(datetime(2099, 1, 1, tzinfo=UTC), "from 2099")
    edge = at(now + timedelta(minutes=4), "4 min ahead")  # within the tolerance
    result = ingestor.ingest([(topic(o), o.to_json()) for o in (year_2099, edge)])
    assert [(o.outcome, o.code) for o in result.outcomes] == [("rejected", "future"),
                                                              ("stored", None)]
    with engine.connect() as conn:
        reason = conn.scalar(sa.select(RejectedMessage.reason))
        row = conn.execute(sa.select(ObservationRow.finished_at, ObservationRow.received_at,
                                     ObservationRow.observed_at)).one()
    assert "finished_at 2099-01-01T00:00:00+00:00 is later than the receive time" in reason
    assert store._aware(row.observed_at) == store._aware(row.received_at)  # clamped
    assert store._aware(row.finished_at) > store._aware(row.received_at)
    later = at(utcnow() + timedelta(seconds=1), "real, later")  # after the clamped time
    ingestor.ingest([(topic(later), later.to_json())])
    with session_factory(engine)() as session:
        (facts,) = store.latest_asset_facts(session)
    assert facts.facts["identity.vendor"].value == "real, later"
    engine.dispose()


def test_a_collector_cannot_reuse_another_collectors_observation_id(database_url: str) -> None:
    engine = make_engine(database_url)
    init_db(engine)
    mine = make_observation(collector="c1", asset="plc-1")
    theirs = mine.model_copy(update={"collector_id": "c2"})
    result = Ingestor(engine).ingest([(topic(mine), mine.to_json()),
                                      (topic(theirs), theirs.to_json()),
                                      (topic(mine), mine.to_json())])
    assert [(o.outcome, o.code) for o in result.outcomes] == [
        ("stored", None), ("rejected", "owner"), ("duplicate", None)]
    again = Ingestor(engine).ingest([(topic(theirs), theirs.to_json())])
    assert again.outcomes[0].code == "owner"
    assert again.receipts() == {"c2": {"committed": [], "rejected": [str(mine.observation_id)]}}
    engine.dispose()


def test_migration_0007_moves_existing_data_under_its_site(database_url: str) -> None:
    engine = make_engine(database_url)
    import_table_modules()
    config = alembic_config(engine)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0006")  # the schema before sites became the first key
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO observations (observation_id, site, collector_id, asset_id, asset_kind, "
            "zone, probe, status, started_at, finished_at, received_at, payload) VALUES "
            "('o1', 'plant-a', 'c1', 'plc-1', 'plc', 'cell-1', 'modbus', 'ok', :t, :f, :r, "
            "'{}'), ('o2', 'plant-a', 'c1', 'plc-2', 'plc', 'cell-1', 'modbus', 'ok', :t, :t, "
            ":r, '{}')"), {"t": t0, "f": t0 + timedelta(days=400), "r": t0 + timedelta(hours=1)})
        conn.execute(sa.text(
            "INSERT INTO assets (asset_id, site, kind, zone, name, last_seen) VALUES "
            "('plc-1', 'plant-a', 'plc', 'cell-1', NULL, :t), "
            "('plc-2', 'plant-a', 'plc', 'cell-1', NULL, :t)"), {"t": t0})
        conn.execute(sa.text("INSERT INTO zones (zone_id, name, sl_t) VALUES "
                             "('cell-1', NULL, '{\"IAC\": 2}'), ('spare', NULL, '{}')"))
        conn.execute(sa.text(
            "INSERT INTO findings (asset_id, zone, check_id, status, evaluated_at, detail) "
            "VALUES ('plc-1', 'cell-1', 'OTA-MB-001', 'fail', :t, '{}')"), {"t": t0})
        conn.execute(sa.text(
            "INSERT INTO patch_assets (asset_id, zone, identity, identity_key) VALUES "
            "('plc-1', 'cell-1', '{}', 'k')"))
        conn.execute(sa.text(
            "INSERT INTO patch_status_history (asset_id, advisory_id, cve, at, state_to, "
            "reason) VALUES ('plc-2', 'A', 'CVE-1', :t, 'open', 'r')"), {"t": t0})
    init_db(engine)
    with engine.connect() as conn:
        assets = set(conn.execute(sa.select(AssetRow.site, AssetRow.asset_id)))
        zone_rows = set(conn.execute(sa.select(ZoneRow.site, ZoneRow.zone_id)))
        finding = conn.execute(sa.select(FindingRow.site, FindingRow.asset_id)).one()
        observed = dict(conn.execute(sa.select(ObservationRow.observation_id,
                                               ObservationRow.observed_at)).all())
        patch = conn.execute(sa.text("SELECT site, asset_id FROM patch_assets")).one()
        history = conn.execute(sa.text("SELECT site FROM patch_status_history")).scalar()
    assert assets == {("plant-a", "plc-1"), ("plant-a", "plc-2")}
    assert zone_rows == {("plant-a", "cell-1"), ("plant-a", "spare")}
    assert tuple(finding) == ("plant-a", "plc-1") and tuple(patch) == ("plant-a", "plc-1")
    assert history == "plant-a"
    assert store._aware(observed["o1"]) == t0 + timedelta(hours=1)  # clamped to received
    assert store._aware(observed["o2"]) == t0
    engine.dispose()
