"""The server's MQTT side on the real Mosquitto: rejected messages, duplicates, batches,
and what makes it cheap (receive maximum, garbage collection, paho's property tables)."""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import struct
import time
import uuid
from pathlib import Path

import aiomqtt
import pytest
import sqlalchemy as sa
from paho.mqtt import _packet
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from otaudit.mqtt import client_kwargs, observation_filter
from otaudit.server.db import FindingRow, ObservationRow, RejectedMessage, init_db, make_engine
from otaudit.server.ingest import Ingestor
from otaudit.server.listener import (
    GC_THRESHOLDS,
    Evaluator,
    ServerStats,
    SharedTableProperties,
    lean_gc,
    serve,
    session_kwargs,
    share_property_tables,
)
from otaudit.settings import Settings

from support.observations import make_observation


async def run_server_while(settings: Settings, engine: sa.Engine, publish) -> ServerStats:
    ingestor = Ingestor(engine, topic_prefix=settings.topic_prefix)
    ready, stop, stats = asyncio.Event(), asyncio.Event(), ServerStats()
    task = asyncio.create_task(serve(ingestor, settings, ready=ready, stop=stop, stats=stats))
    await asyncio.wait_for(ready.wait(), 10)
    expected = await publish()
    async with asyncio.timeout(30):
        while stats.stored + stats.duplicates + stats.rejected < expected:
            await asyncio.sleep(0.02)
    stop.set()
    await task
    return stats


async def test_malformed_and_mismatched_messages_are_kept_with_reason(
        tmp_path: Path, mosquitto_url: str, sqlite_url: str) -> None:
    prefix = f"otaudit-test/{uuid.uuid4().hex[:8]}"
    settings = Settings(broker_url=mosquitto_url, topic_prefix=prefix,
                        server_client_id=f"srv-{uuid.uuid4().hex[:8]}")
    engine = make_engine(sqlite_url)
    init_db(engine)
    good = make_observation(site="s1", collector="c1", asset="plc-1")
    wrong_topic = make_observation(site="s1", collector="c1", asset="plc-2")

    async def publish() -> int:
        async with aiomqtt.Client(**client_kwargs(settings)) as pub:
            topic = f"{prefix}/s1/c1/obs/plc-1"
            await pub.publish(topic, b"{not json", qos=1)
            await pub.publish(topic, b'{"schema_version": 1}', qos=1)
            await pub.publish(topic, wrong_topic.to_json(), qos=1)
            await pub.publish(topic, good.to_json(), qos=1)
            await pub.publish(topic, good.to_json(), qos=1)  # same observation again
        return 5

    stats = await run_server_while(settings, engine, publish)
    assert (stats.stored, stats.duplicates, stats.rejected) == (1, 1, 3)
    with engine.connect() as conn:
        reasons = [r for (r,) in conn.execute(sa.select(RejectedMessage.reason)
                                              .order_by(RejectedMessage.id))]
        stored = conn.execute(sa.select(sa.func.count()).select_from(ObservationRow)).scalar()
    assert stored == 1
    assert "invalid observation" in reasons[0] and "json" in reasons[0].lower()
    assert "collector_id: Field required" in reasons[1]
    assert "asset 'plc-2' in payload but 'plc-1' in topic" in reasons[2]
    engine.dispose()


async def test_findings_are_evaluated_after_the_ack_and_complete_when_serve_returns(
        mosquitto_url: str, sqlite_url: str) -> None:
    prefix = f"otaudit-test/{uuid.uuid4().hex[:8]}"
    settings = Settings(broker_url=mosquitto_url, topic_prefix=prefix,
                        server_client_id=f"srv-{uuid.uuid4().hex[:8]}")
    engine = make_engine(sqlite_url)
    init_db(engine)
    facts = {"identity.vendor": "Schneider Electric"}

    def assets_with_findings() -> set[str]:
        with engine.connect() as conn:
            return set(conn.scalars(sa.select(FindingRow.asset_id).distinct()))

    async def publish(observations: list) -> None:
        async with aiomqtt.Client(**client_kwargs(settings)) as pub:
            for obs in observations:
                await pub.publish(f"{prefix}/s1/c1/obs/{obs.asset.id}", obs.to_json(), qos=1)

    ingestor = Ingestor(engine, topic_prefix=prefix)
    ready, stop, stats = asyncio.Event(), asyncio.Event(), ServerStats()
    task = asyncio.create_task(serve(ingestor, settings, ready=ready, stop=stop, stats=stats))
    await asyncio.wait_for(ready.wait(), 10)
    # while serving: evaluated in the background once the batches are stored
    await publish([make_observation(site="s1", collector="c1", asset=f"plc-{i}", facts=facts)
                   for i in range(3)])
    async with asyncio.timeout(10):
        while assets_with_findings() != {"plc-0", "plc-1", "plc-2"}:
            await asyncio.sleep(0.05)
    # stopped right after storage: serve evaluates what is pending before it returns
    await publish([make_observation(site="s1", collector="c1", asset=f"hmi-{i}", facts=facts)
                   for i in range(3)])
    async with asyncio.timeout(10):
        while stats.stored < 6:
            await asyncio.sleep(0.01)
    stop.set()
    await task
    assert ingestor.pending == 0
    assert assets_with_findings() == {"plc-0", "plc-1", "plc-2", "hmi-0", "hmi-1", "hmi-2"}
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(ObservationRow)) == 6
    engine.dispose()


async def test_serve_reevaluates_what_a_stopped_server_left_pending(
        mosquitto_url: str, sqlite_url: str) -> None:
    prefix = f"otaudit-test/{uuid.uuid4().hex[:8]}"
    settings = Settings(broker_url=mosquitto_url, topic_prefix=prefix,
                        server_client_id=f"srv-{uuid.uuid4().hex[:8]}")
    engine = make_engine(sqlite_url)
    init_db(engine)
    obs = make_observation(site="s1", collector="c1", asset="plc-1",
                           facts={"identity.vendor": "Schneider Electric"})
    # stored and acknowledged, then the process died before evaluating
    Ingestor(engine, topic_prefix=prefix, evaluate_inline=False).ingest(
        [(f"{prefix}/s1/c1/obs/plc-1", obs.to_json())])
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(FindingRow)) == 0
    ready, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(Ingestor(engine, topic_prefix=prefix), settings,
                                     ready=ready, stop=stop))
    await asyncio.wait_for(ready.wait(), 10)
    async with asyncio.timeout(10):  # evaluated in the background, no message needed
        while True:
            with engine.connect() as conn:
                if conn.scalar(sa.select(sa.func.count()).select_from(FindingRow)):
                    break
            await asyncio.sleep(0.05)
    stop.set()
    await task
    engine.dispose()


async def test_batches_are_not_capped_by_the_brokers_in_flight_default(
        mosquitto_url: str, sqlite_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """Mosquitto sends a client about 20 unacknowledged messages by default; the server asks
    for more (MQTT 5 receive maximum), so that while one batch is being stored the next ones
    arrive instead of the broker waiting for acks."""
    prefix = f"otaudit-test/{uuid.uuid4().hex[:8]}"
    settings = Settings(broker_url=mosquitto_url, topic_prefix=prefix,
                        server_client_id=f"srv-{uuid.uuid4().hex[:8]}")
    engine = make_engine(sqlite_url)
    init_db(engine)
    async with aiomqtt.Client(identifier=settings.server_client_id, **client_kwargs(settings),
                              **session_kwargs(settings)) as client:  # the session queues
        await client.subscribe(observation_filter(prefix), qos=1)
    async with aiomqtt.Client(**client_kwargs(settings)) as pub:
        for i in range(150):
            obs = make_observation(site="s1", collector="c1", asset=f"plc-{i}")
            await pub.publish(f"{prefix}/s1/c1/obs/{obs.asset.id}", obs.to_json(), qos=1)
    caplog.set_level(logging.DEBUG, logger="otaudit.server.listener")
    ingestor = Ingestor(engine, topic_prefix=prefix)
    ready, stop, stats = asyncio.Event(), asyncio.Event(), ServerStats()
    blocker = engine.raw_connection()  # another writer: the first batch waits, unacknowledged
    cursor = blocker.cursor()
    if engine.dialect.name == "sqlite":
        cursor.execute("BEGIN IMMEDIATE")
    else:
        cursor.execute("LOCK TABLE observations IN EXCLUSIVE MODE")
    task = asyncio.create_task(serve(ingestor, settings, ready=ready, stop=stop, stats=stats))
    try:
        await asyncio.wait_for(ready.wait(), 10)
        await asyncio.sleep(1.0)
        assert stats.stored == 0
    finally:
        blocker.rollback()
        blocker.close()
    async with asyncio.timeout(30):
        while stats.stored < 150:
            await asyncio.sleep(0.02)
    stop.set()
    await task
    sizes = [int(m.group(1)) for r in caplog.records
             if (m := re.match(r"ingested batch of (\d+)", r.getMessage()))]
    # all 150 arrived during the block: the batch stored first, the one checked meanwhile,
    # the rest (capped, the broker sends 20, then a few more per ack: 5 batches or more)
    assert sum(sizes) == 150 and len(sizes) <= 3, sizes
    engine.dispose()


class _FailingIngestor(Ingestor):
    def store(self, batch, *, evaluate=None):
        raise RuntimeError("a bug in storage")


async def test_a_batch_that_fails_to_store_stops_the_server_at_once_unacknowledged(
        mosquitto_url: str, sqlite_url: str) -> None:
    """Not when the next message comes (it may never come): the error ends ``serve`` now,
    and the broker keeps the message for the next server."""
    prefix = f"otaudit-test/{uuid.uuid4().hex[:8]}"
    settings = Settings(broker_url=mosquitto_url, topic_prefix=prefix,
                        server_client_id=f"srv-{uuid.uuid4().hex[:8]}")
    engine = make_engine(sqlite_url)
    init_db(engine)
    ready = asyncio.Event()
    task = asyncio.create_task(serve(_FailingIngestor(engine, topic_prefix=prefix), settings,
                                     ready=ready))
    await asyncio.wait_for(ready.wait(), 10)
    obs = make_observation(site="s1", collector="c1", asset="plc-1")
    async with aiomqtt.Client(**client_kwargs(settings)) as pub:
        await pub.publish(f"{prefix}/s1/c1/obs/plc-1", obs.to_json(), qos=1)
    published = time.monotonic()
    with pytest.raises(RuntimeError, match="a bug in storage"):
        await asyncio.wait_for(task, 30)
    assert time.monotonic() - published < 10

    async def publish_nothing() -> int:
        return 1

    stats = await run_server_while(settings, engine, publish_nothing)  # redelivered
    assert stats.stored == 1
    engine.dispose()


def test_paho_decodes_the_same_properties_with_shared_tables(
        monkeypatch: pytest.MonkeyPatch) -> None:
    sent = Properties(PacketTypes.PUBLISH)
    sent.MessageExpiryInterval = 60
    sent.ContentType = "application/json"
    sent.UserProperty = [("a", "1"), ("b", "2")]
    sent.CorrelationData = b"\x00\x01"
    topic = b"otaudit/v1/s1/c1/obs/plc-1"

    def decode(properties: bytes) -> Properties:
        body = struct.pack("!H", len(topic)) + topic + struct.pack("!H", 7) + properties + b"{}"
        packet = _packet.decode_publish(0x32, body, 5)  # QoS 1 PUBLISH, MQTT 5
        assert (packet.topic, packet.mid, packet.payload) == (topic, 7, b"{}")
        return packet.properties

    monkeypatch.setattr(_packet, "Properties", Properties)  # paho's own (a server may have run)
    stock = decode(sent.pack()), decode(b"\x00")
    assert share_property_tables()
    shared = decode(sent.pack()), decode(b"\x00")
    assert all(type(p) is SharedTableProperties for p in shared)
    assert [p.json() for p in shared] == [p.json() for p in stock]
    assert shared[0].UserProperty == [("a", "1"), ("b", "2")] and shared[1].isEmpty()
    assert Properties(PacketTypes.CONNECT).names is not shared[0].names  # paho's own: untouched


def test_lean_gc_freezes_the_heap_and_restores_the_collector() -> None:
    before = gc.get_threshold()
    frozen = gc.get_freeze_count()
    outer, inner = lean_gc(), lean_gc()
    outer.__enter__()
    assert gc.get_threshold() == GC_THRESHOLDS and gc.get_freeze_count() > frozen
    inner.__enter__()
    outer.__exit__(None, None, None)  # two servers in one process stop in any order
    assert gc.get_threshold() == GC_THRESHOLDS
    inner.__exit__(None, None, None)
    assert gc.get_threshold() == before and gc.get_freeze_count() == frozen


def test_evaluation_waits_while_a_batch_is_in_flight(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    init_db(engine)
    ingestor = Ingestor(engine, evaluate_inline=False)
    ingestor.ingest([("otaudit/v1/s1/c1/obs/plc-1",
                      make_observation(site="s1", collector="c1").to_json())])
    evaluator = Evaluator(ingestor, idle=0.05, max_delay=0.3)
    evaluator.stored()
    with evaluator.handling():  # a slow batch (checked or stored) is no pause in the traffic
        time.sleep(0.1)
        assert not evaluator.due()
        time.sleep(0.25)
        assert evaluator.due()  # the oldest pending asset has waited max_delay
    evaluator.first_pending = None
    assert not evaluator.due()  # the batch just ended
    time.sleep(0.1)
    assert evaluator.due()
    engine.dispose()
