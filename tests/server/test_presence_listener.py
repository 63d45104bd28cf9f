"""The listener follows the collectors' status topics on the real Mosquitto: a status is
recorded (not rejected as an observation), observations count as heard, and a collector
silent for N heartbeat intervals is alerted once."""

from __future__ import annotations

import asyncio
import json
import uuid

import aiomqtt
import sqlalchemy as sa

from otaudit.observation import utcnow
from otaudit.server.alerts.dispatch import AlertDispatcher
from otaudit.server.alerts.model import Alert
from otaudit.server.db import RejectedMessage, init_db, make_engine
from otaudit.server.ingest import Ingestor
from otaudit.server.listener import ServerStats, serve
from otaudit.server.metrics import ServerMetrics
from otaudit.server.presence import Presence
from otaudit.settings import Settings

from support.observations import make_observation


class Recorder:
    channel, target = "test", "memory"

    def __init__(self) -> None:
        self.got: list[Alert] = []

    def deliver(self, alert: Alert) -> tuple[None, int]:
        self.got.append(alert)
        return None, 1


async def test_status_topics_feed_presence_and_silence_alerts(mosquitto_url: str,
                                                              sqlite_url: str) -> None:
    prefix = f"otaudit-test/{uuid.uuid4().hex[:8]}"
    settings = Settings(broker_url=mosquitto_url, topic_prefix=prefix, heartbeat_interval=0.2,
                        server_client_id=f"srv-{uuid.uuid4().hex[:8]}")
    engine = make_engine(sqlite_url)
    init_db(engine)
    recorder = Recorder()
    ingestor = Ingestor(engine, topic_prefix=prefix,
                        alerts=AlertDispatcher([recorder], None))
    presence = Presence(prefix, interval=0.2, intervals=3)
    metrics = ServerMetrics(None, presence, prefix)
    ingestor.observers.append(metrics.observe)
    ready, stop, stats = asyncio.Event(), asyncio.Event(), ServerStats()
    task = asyncio.create_task(serve(ingestor, settings, ready=ready, stop=stop, stats=stats,
                                     presence=presence))
    await asyncio.wait_for(ready.wait(), 10)
    obs = make_observation(site="plant-s", collector="c-obs")
    async with aiomqtt.Client("127.0.0.1", int(mosquitto_url.rsplit(":", 1)[1])) as client:
        await client.publish(f"{prefix}/plant-s/c-status/status", json.dumps(
            {"state": "online", "at": utcnow().isoformat()}), qos=1)
        await client.publish(f"{prefix}/plant-s/c-obs/obs/{obs.asset.id}", obs.to_json(),
                             qos=1)
    async with asyncio.timeout(20):
        while len({a.data["collector"] for a in recorder.got}) < 2:
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # each is alerted once while it stays silent
    stop.set()
    await task
    assert stats.stored == 1 and stats.rejected == 0
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(RejectedMessage)
                            ).scalar_one() == 0
    assert sorted((a.type, a.site, a.data["collector"]) for a in recorder.got) == [
        ("collector_silent", "plant-s", "c-obs"), ("collector_silent", "plant-s", "c-status")]
    assert set(presence.snapshot()) == {("plant-s", "c-status"), ("plant-s", "c-obs")}
    engine.dispose()
