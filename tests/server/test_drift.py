"""Drift at ingest: a changed fact between two observations of an asset endpoint becomes one
event with both observation ids; re-ingesting adds nothing. SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa

from otaudit.observation import ProbeStatus
from otaudit.server.db import init_db, make_engine, session_factory
from otaudit.server.drift.events import DriftEvent, list_events
from otaudit.server.ingest import Ingestor

from support.observations import make_observation

S7 = {"identity.vendor": "Siemens", "identity.firmware_version": "V4.5.2",
      "identity.serial": "S C-X4U123456", "s7.protection_level": 1}


def message(obs):
    return f"otaudit/v1/{obs.site}/{obs.collector_id}/obs/{obs.asset.id}", obs.to_json()


def engine_for(url: str) -> sa.Engine:
    engine = make_engine(url)
    init_db(engine)
    return engine


def events(engine: sa.Engine) -> list[DriftEvent]:
    with session_factory(engine)() as session:
        return list_events(session)


def test_a_firmware_change_is_one_event_with_both_observations(database_url: str) -> None:
    engine = engine_for(database_url)
    ingestor = Ingestor(engine)
    first = make_observation(facts=S7, probe="s7")
    second = make_observation(facts={**S7, "identity.firmware_version": "V4.6.0"}, probe="s7",
                              minutes=60)
    assert ingestor.ingest([message(first)]).drift == []
    result = ingestor.ingest([message(second)])
    assert [(d.fact, d.kind) for d in result.drift] == [("identity.firmware_version",
                                                         "firmware")]
    [event] = events(engine)
    assert (event.site, event.asset_id, event.probe) == ("plant-a", "plc-1", "s7")
    assert (event.before, event.after) == ("V4.5.2", "V4.6.0")
    assert event.before_observation_id == str(first.observation_id)
    assert event.after_observation_id == str(second.observation_id)
    # the bundled baselines/drift.yaml: firmware must not drift outside a window
    assert (event.policy, event.severity) == ("violation", "high")
    again = ingestor.ingest([message(second), message(first)])
    assert again.duplicates == 2 and again.drift == []
    assert len(events(engine)) == 1


def test_a_new_serial_is_a_replaced_device_and_identity_changes_are_named(
        sqlite_url: str) -> None:
    engine = engine_for(sqlite_url)
    ingestor = Ingestor(engine)
    ingestor.ingest([message(make_observation(facts=S7, probe="s7"))])
    ingestor.ingest([message(make_observation(
        probe="s7", minutes=5, facts={**S7, "identity.serial": "S C-X4U999999",
                                      "s7.protection_level": 3}))])
    kinds = {(e.fact, e.kind, e.severity) for e in events(engine)}
    assert kinds == {("identity.serial", "device_replaced", "high"),
                     ("s7.protection_level", "configuration", "medium")}


def test_unknown_to_known_is_not_a_value_change(database_url: str) -> None:
    engine = engine_for(database_url)
    ingestor = Ingestor(engine)
    facts = {k: v for k, v in S7.items() if k != "identity.firmware_version"}
    ingestor.ingest([message(make_observation(
        facts=facts, probe="s7", unknown={"identity.firmware_version": "SZL 0x0011 refused"}))])
    ingestor.ingest([message(make_observation(facts=S7, probe="s7", minutes=5))])
    ingestor.ingest([message(make_observation(
        facts=facts, probe="s7", minutes=10, unknown={"identity.firmware_version": "timeout"}))])
    got = [(e.kind, e.before, e.after, e.severity, e.policy) for e in events(engine)]
    assert got == [("now_known", None, "V4.5.2", "info", None),
                   ("now_unknown", "V4.5.2", None, "info", None)]
    assert events(engine)[0].detail == {"unknown_before": "SZL 0x0011 refused"}


def test_services_compare_as_sets_and_volatile_facts_never_drift(sqlite_url: str) -> None:
    engine = engine_for(sqlite_url)
    ingestor = Ingestor(engine)
    ssh = {"proto": "tcp", "address": "0.0.0.0", "port": 22, "process": "sshd"}
    web = {"proto": "tcp", "address": "0.0.0.0", "port": 80, "process": "nginx"}
    telnet = {"proto": "tcp", "address": "0.0.0.0", "port": 23, "process": "inetd"}
    for minutes, listening, uptime in ((0, [ssh, web], 100), (5, [web, ssh], 200),
                                       (10, [web, telnet], 300)):
        ingestor.ingest([message(make_observation(
            asset="hmi-1", probe="ssh", minutes=minutes,
            facts={"services.listening": listening, "snmp.sys_uptime": uptime}))])
    [event] = events(engine)
    assert (event.fact, event.kind) == ("services.listening", "services")
    assert event.detail == {"added": [telnet], "removed": [ssh]}


def test_each_observation_of_a_batch_is_compared_with_the_one_before(database_url: str) -> None:
    engine = engine_for(database_url)
    ingestor = Ingestor(engine)
    versions = ["V1", "V2", "V3"]
    observations = [make_observation(facts={"identity.firmware_version": v}, minutes=i)
                    for i, v in enumerate(versions)]
    ingestor.ingest([message(observations[0])])
    # one batch, newest first: compared in observed order, each with its predecessor
    ingestor.ingest([message(observations[2]), message(observations[1])])
    got = [(e.before, e.after, e.before_observation_id, e.after_observation_id)
           for e in sorted(events(engine), key=lambda e: e.after)]
    ids = [str(o.observation_id) for o in observations]
    assert got == [("V1", "V2", ids[0], ids[1]), ("V2", "V3", ids[1], ids[2])]


def test_late_failed_and_other_site_observations_do_not_drift(sqlite_url: str) -> None:
    engine = engine_for(sqlite_url)
    ingestor = Ingestor(engine)
    fw = "identity.firmware_version"
    ingestor.ingest([message(make_observation(facts={fw: "V2"}, minutes=10))])
    late = make_observation(facts={fw: "V1"}, minutes=5)  # older than what is stored
    failed = make_observation(minutes=15, status=ProbeStatus.TIMEOUT)
    other_site = make_observation(facts={fw: "V9"}, minutes=20, site="plant-b")
    assert ingestor.ingest([message(late), message(failed), message(other_site)]).stored == 3
    assert events(engine) == []
    # the next good observation is compared with the newest good one (V2), not the timeout
    ingestor.ingest([message(make_observation(facts={fw: "V3"}, minutes=30))])
    [event] = events(engine)
    assert (event.site, event.before, event.after) == ("plant-a", "V2", "V3")


def test_otaudit_drift_lists_events_as_table_and_json(sqlite_url: str) -> None:
    import json

    from typer.testing import CliRunner

    from otaudit.cli.main import app

    engine = engine_for(sqlite_url)
    ingestor = Ingestor(engine)
    ingestor.ingest([message(make_observation(facts=S7, probe="s7"))])
    ingestor.ingest([message(make_observation(
        facts={**S7, "identity.firmware_version": "V4.6.0"}, probe="s7", minutes=5))])
    ingestor.ingest([message(make_observation(facts=S7, probe="s7", site="plant-b"))])
    engine.dispose()
    runner = CliRunner()
    table = runner.invoke(app, ["drift", "--db", sqlite_url, "--site", "plant-a"])
    assert table.exit_code == 0, table.output
    header, row = table.output.strip().splitlines()
    assert header.split()[:5] == ["detected_at", "asset_id", "probe", "fact", "kind"]
    assert row.split()[2:] == ["plc-1", "s7", "identity.firmware_version", "firmware", "high",
                               "violation", "V4.5.2", "V4.6.0"]
    data = json.loads(runner.invoke(app, ["drift", "--db", sqlite_url, "--site", "plant-a",
                                          "--format", "json", "--since", "2026-01-01"]).output)
    assert [(d["fact"], d["after"]) for d in data] == [("identity.firmware_version", "V4.6.0")]
    assert set(data[0]["evidence"]) == {"before_observation_id", "after_observation_id"}
    later = runner.invoke(app, ["drift", "--db", sqlite_url, "--site", "plant-a",
                                "--since", "2999-01-01"])
    assert later.output.strip() == "no drift events"
    several = runner.invoke(app, ["drift", "--db", sqlite_url])
    assert several.exit_code == 2 and "several sites" in several.output
