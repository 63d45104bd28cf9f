"""The server's MQTT side on the real Mosquitto: rejected messages, duplicates, batches."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import aiomqtt
import sqlalchemy as sa

from otaudit.server.db import FindingRow, ObservationRow, RejectedMessage, init_db, make_engine
from otaudit.server.ingest import Ingestor
from otaudit.server.listener import ServerStats, serve
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
        async with aiomqtt.Client("127.0.0.1", 1883) as pub:
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
        async with aiomqtt.Client("127.0.0.1", 1883) as pub:
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
