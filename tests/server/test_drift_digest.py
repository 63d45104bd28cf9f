"""The drift digest (``drift.compare.digest``): equal digests must mean ``diff`` finds no
change, or ingest would miss a drift it skips on an equal digest; and the skip itself, with
observations stored before digests were kept (NULL) and many endpoints in one batch."""

from __future__ import annotations

import json

import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from otaudit.server.db import init_db, make_engine, session_factory
from otaudit.server.drift.compare import (
    VOLATILE,
    comparable,
    diff,
    digest,
    observation_digest,
)
from otaudit.server.drift.events import list_events
from otaudit.server.ingest import Ingestor

from support.observations import make_observation

PATHS = ["identity.firmware_version", "identity.serial", "services.listening",
         "snmp.sys_uptime", "auth.local_users"]  # one of them volatile
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2, 2), st.sampled_from([0.0, 1.0]),
                    st.sampled_from(["", "a", "V1"]))
values = st.one_of(scalars, st.lists(scalars, max_size=3),
                   st.dictionaries(st.sampled_from(["k", "j"]), scalars, max_size=2))
payloads = st.fixed_dictionaries({
    "facts": st.dictionaries(st.sampled_from(PATHS), values.map(lambda v: {"value": v})),
    "unknown": st.dictionaries(st.sampled_from(PATHS), st.sampled_from(["timeout", "refused"])),
})


@settings(max_examples=400, deadline=None)
@given(payloads, payloads)
def test_equal_digests_mean_no_change(before: dict, after: dict) -> None:
    if digest(before) == digest(after):
        assert diff(before, after) == []


@given(payloads, st.integers())
def test_volatile_facts_unknown_reasons_and_evidence_leave_the_digest(payload: dict,
                                                                      uptime: int) -> None:
    assert "snmp.sys_uptime" in VOLATILE
    moved = {"facts": {k: {"value": v["value"], "evidence": ["e9"]}
                       for k, v in payload["facts"].items()},
             "unknown": {k: "another reason" for k in payload["unknown"]}}
    moved["facts"]["snmp.sys_uptime"] = {"value": uptime}
    assert digest(moved) == digest(payload)


@given(payloads)
def test_an_observations_digest_is_the_digest_of_what_diff_reads(payload: dict) -> None:
    """Ingest digests the model (``observation_digest``); a stored payload is read back as
    ``comparable`` builds it: both must give the same digest, or every observation would
    look changed against its stored predecessor."""
    obs = make_observation(facts={k: v["value"] for k, v in payload["facts"].items()},
                           unknown=payload["unknown"])
    assert observation_digest(obs) == digest(comparable(obs)) == digest(payload)
    stored = json.loads(obs.to_json())
    assert digest(stored) == observation_digest(obs)


def test_each_kind_of_change_changes_the_digest() -> None:
    base = {"facts": {"identity.firmware_version": {"value": "V1"}}, "unknown": {}}
    for other in ({"facts": {"identity.firmware_version": {"value": "V2"}}, "unknown": {}},
                  {"facts": {"identity.firmware_version": {"value": 1}}, "unknown": {}},
                  {"facts": {"identity.firmware_version": {"value": True}}, "unknown": {}},
                  {"facts": {}, "unknown": {"identity.firmware_version": "timeout"}},
                  {"facts": {**base["facts"], "identity.serial": {"value": "S"}},
                   "unknown": {}}):
        assert digest(other) != digest(base), other
    assert digest({"facts": {"x.y": {"value": 1}}, "unknown": {}}) != digest(
        {"facts": {"x.y": {"value": 1.0}}, "unknown": {}})  # ``same`` keeps them apart too


S7 = {"identity.vendor": "Siemens", "identity.firmware_version": "V4.5.2",
      "s7.protection_level": 1, "s7.cpu_mode": "RUN"}


def message(obs):
    return f"otaudit/v1/{obs.site}/{obs.collector_id}/obs/{obs.asset.id}", obs.to_json()


def test_rows_stored_before_digests_are_compared_in_full(database_url: str) -> None:
    engine = make_engine(database_url)
    init_db(engine)
    ingestor = Ingestor(engine)
    first = make_observation(facts=S7, probe="s7")
    ingestor.ingest([message(first)])
    with engine.begin() as conn:  # as migration 0010 leaves the rows it found
        conn.execute(sa.text("UPDATE observations SET values_digest = NULL"))
    same = make_observation(facts={**S7, "s7.cpu_mode": "STOP"}, probe="s7", minutes=5)
    assert ingestor.ingest([message(same)]).drift == []  # only a volatile fact moved
    changed = make_observation(facts={**S7, "identity.firmware_version": "V4.6.0"},
                               probe="s7", minutes=10)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE observations SET values_digest = NULL"))
    [event] = ingestor.ingest([message(changed)]).drift
    assert (event.before, event.after) == ("V4.5.2", "V4.6.0")
    assert event.before_observation_id == str(same.observation_id)


def test_many_endpoints_in_one_batch_each_against_its_own_previous(database_url: str) -> None:
    engine = make_engine(database_url)
    init_db(engine)
    ingestor = Ingestor(engine)
    count = 230  # more than one statement's worth of endpoints on SQLite (100)
    firsts = [make_observation(facts=S7, probe="s7", asset=f"plc-{i}") for i in range(count)]
    ingestor.ingest([message(o) for o in firsts])
    seconds = [make_observation(probe="s7", asset=f"plc-{i}", minutes=5, facts={
        **S7, "identity.firmware_version": "V4.6.0" if i % 7 == 0 else "V4.5.2"})
        for i in range(count)]
    result = ingestor.ingest([message(o) for o in seconds])
    assert sorted(d.asset_id for d in result.drift) == sorted(
        f"plc-{i}" for i in range(count) if i % 7 == 0)
    by_asset = {str(o.observation_id): o.asset.id for o in firsts}
    assert all(by_asset[d.before_observation_id] == d.asset_id for d in result.drift)
    with session_factory(engine)() as session:
        assert len(list_events(session)) == len(result.drift)
        stored = session.execute(sa.text(
            "SELECT count(*) FROM observations WHERE values_digest IS NULL")).scalar()
    assert stored == 0
