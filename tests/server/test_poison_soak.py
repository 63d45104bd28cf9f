"""A soak through the real broker: poison mixed into normal traffic from two sites that use
the same asset ids, on SQLite and PostgreSQL. The server never stops, every good message is
stored (each site's asset under its own key), every poison is rejected and acknowledged."""

from __future__ import annotations

import asyncio
import json
import os
import random
import uuid

import aiomqtt
import pytest
import sqlalchemy as sa

from otaudit.mqtt import client_kwargs
from otaudit.observation import MAX_MESSAGE_BYTES, Observation
from otaudit.server.db import (
    AssetRow,
    FindingRow,
    ObservationRow,
    RejectedMessage,
    init_db,
    make_engine,
)
from otaudit.server.ingest import Ingestor
from otaudit.server.listener import ServerStats, serve
from otaudit.settings import Settings

from support.observations import make_observation
from support.poison import poison_trigger, raw

pytestmark = pytest.mark.slow

GOOD_PER_SITE = int(os.environ.get("OTAUDIT_SOAK_GOOD", "150"))  # larger: a longer soak
POISON = max(45, GOOD_PER_SITE // 3)


def poison_messages(prefix: str, rng: random.Random) -> list[tuple[str, bytes]]:
    base = make_observation(site="plant-a", collector="ca", asset="plc-1")
    where = f"{prefix}/plant-a/ca/obs/plc-1"
    kinds = [
        lambda: (where, b'{"a": "\x00"}not json'),
        lambda: (where, raw(base, observation_id=str(uuid.uuid4()), asset__zone="z\x00")),
        lambda: (where, raw(base, observation_id=str(uuid.uuid4()), probe="p" * 40)),
        lambda: (f"{prefix}/plant-a/ca/obs/{'a' * 100}",
                 raw(base, observation_id=str(uuid.uuid4()), asset__id="a" * 100)),
        lambda: (where, raw(base, observation_id=str(uuid.uuid4()),
                            finished_at="2099-01-01T00:00:00+00:00")),
        lambda: (where, b"[" * 5000),
        lambda: (where, bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))),
        lambda: (f"{prefix}/plant-a/ca/obs/poison",  # refused by the database itself
                 make_observation(site="plant-a", collector="ca", asset="poison").to_json()),
        lambda: (where, b"{}" + b" " * MAX_MESSAGE_BYTES),
    ]
    return [kinds[i % len(kinds)]() for i in range(POISON)]


async def test_poison_in_normal_traffic_stops_nothing_and_loses_nothing(
        mosquitto_factory, database_url: str) -> None:  # type: ignore[no-untyped-def]
    broker = mosquitto_factory()  # its own, with a queue deep enough for the whole soak
    broker.start()
    prefix = f"otaudit-test/{uuid.uuid4().hex[:8]}"
    settings = Settings(broker_url=broker.url, topic_prefix=prefix,
                        server_client_id=f"srv-{uuid.uuid4().hex[:8]}")
    engine = make_engine(database_url)
    init_db(engine)
    poison_trigger(engine)
    rng = random.Random(16)
    good: list[Observation] = []
    for site, collector in (("plant-a", "ca"), ("plant-b", "cb")):
        good += [make_observation(site=site, collector=collector, asset=f"plc-{i % 50}",
                                  minutes=i, facts={"identity.vendor": site})
                 for i in range(GOOD_PER_SITE)]
    messages = [(f"{prefix}/{o.site}/{o.collector_id}/obs/{o.asset.id}", o.to_json())
                for o in good]
    poison = poison_messages(prefix, rng)
    for item in poison:
        messages.insert(rng.randrange(len(messages) + 1), item)

    ingestor = Ingestor(engine, topic_prefix=prefix)
    ready, stop, stats = asyncio.Event(), asyncio.Event(), ServerStats()
    server = asyncio.create_task(serve(ingestor, settings, ready=ready, stop=stop, stats=stats))
    await asyncio.wait_for(ready.wait(), 10)
    async with aiomqtt.Client(**client_kwargs(settings)) as pub:
        for t, payload in messages:
            await pub.publish(t, payload, qos=1)
    async with asyncio.timeout(60 + len(messages) / 20):
        while stats.stored + stats.duplicates + stats.rejected < len(messages):
            assert not server.done(), f"the server stopped: {server.exception()!r}"
            await asyncio.sleep(0.05)
    assert not server.done()
    stop.set()
    await server

    assert (stats.stored, stats.duplicates, stats.rejected) == (len(good), 0, len(poison))
    with engine.connect() as conn:
        ids = set(conn.scalars(sa.select(ObservationRow.observation_id)))
        assets = set(conn.execute(sa.select(AssetRow.site, AssetRow.asset_id)))
        rejected = conn.scalar(sa.select(sa.func.count()).select_from(RejectedMessage))
        vendors = {(site, payload["facts"]["identity.vendor"]["value"]) for site, payload in
                   conn.execute(sa.select(ObservationRow.site, ObservationRow.payload))}
        evaluated = set(conn.execute(sa.select(FindingRow.site, FindingRow.asset_id).distinct()))
    assert ids == {str(o.observation_id) for o in good}
    assert assets == {(s, f"plc-{i}") for s in ("plant-a", "plant-b") for i in range(50)}
    assert vendors == {("plant-a", "plant-a"), ("plant-b", "plant-b")}
    assert evaluated == assets  # each site's plc-N evaluated under its own key
    assert rejected == len(poison)
    assert ingestor.counts["rejected"] == len(poison)
    assert ingestor.counts["rejected.store_failed"] == sum(
        t.endswith("/obs/poison") for t, _ in poison)
    engine.dispose()


def test_poison_kinds_cover_what_killed_the_server() -> None:
    """The soak's poison includes each message that killed the PostgreSQL server."""
    found = poison_messages("p", random.Random(1))
    payloads = [p for _, p in found]
    assert b'{"a": "\x00"}not json' in payloads
    assert any(b"z\\u0000" in p for p in payloads)
    assert any(json.loads(p).get("probe") == "p" * 40 for p in payloads
               if p.startswith(b"{\"") and b"probe" in p and len(p) < MAX_MESSAGE_BYTES)
