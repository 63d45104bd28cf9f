"""Server durability: killed mid-ingest and restarted loses nothing; replicas share the load.

Figures are printed (run with -s to see them).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiomqtt
import pytest
import sqlalchemy as sa

from otaudit.mqtt import observation_topic
from otaudit.server.db import ObservationRow, init_db, make_engine
from otaudit.server.ingest import Ingestor
from otaudit.server.listener import ServerStats, serve
from otaudit.settings import Settings

from support.observations import make_observation

pytestmark = pytest.mark.slow


def stored_ids(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.scalars(sa.select(ObservationRow.observation_id)))
    except sa.exc.OperationalError:
        return []
    finally:
        engine.dispose()


async def publish(url: str, observations: list, prefix: str = "otaudit/v1") -> None:
    port = int(url.rsplit(":", 1)[1])
    async with aiomqtt.Client("127.0.0.1", port) as client:
        for obs in observations:
            topic = observation_topic(prefix, obs.site, obs.collector_id, obs.asset.id)
            await client.publish(topic, obs.to_json(), qos=1)


def start_server(broker_url: str, database_url: str, client_id: str, log: Path) -> subprocess.Popen:
    env = dict(os.environ, OTAUDIT_BROKER_URL=broker_url, OTAUDIT_DATABASE_URL=database_url,
               OTAUDIT_SERVER_CLIENT_ID=client_id)
    return subprocess.Popen([sys.executable, "-m", "otaudit.cli.main", "server", "run"],
                            env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


async def wait_for_subscription(log: Path, times: int = 1, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and log.read_text().count("server: subscribed") >= times:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("server did not subscribe: " + log.read_text()[-2000:])


async def wait_for_count(url: str, count: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = len(stored_ids(url))
        if n >= count:
            return n
        await asyncio.sleep(0.1)
    return len(stored_ids(url))


async def test_server_killed_during_ingest_loses_and_duplicates_nothing(
        tmp_path: Path, mosquitto_factory, database_url: str) -> None:
    broker = mosquitto_factory()
    broker.start()
    client_id = f"srv-{uuid.uuid4().hex[:8]}"
    engine = make_engine(database_url)
    init_db(engine)
    engine.dispose()
    total = 400
    observations = [make_observation(asset=f"plc-{i % 40}", minutes=i) for i in range(total)]
    log = tmp_path / "server.log"
    server = start_server(broker.url, database_url, client_id, log)
    await wait_for_subscription(log)  # the persistent session exists from here on
    await publish(broker.url, observations[:250])
    first = await wait_for_count(database_url, 20, 20)
    server.send_signal(signal.SIGKILL)
    server.wait(10)
    at_kill = len(stored_ids(database_url))
    await publish(broker.url, observations[250:])  # published while the server is down
    server = start_server(broker.url, database_url, client_id, log)
    try:
        final = await wait_for_count(database_url, total, 60)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(10)
    ids = stored_ids(database_url)
    print(f"\nserver kill: sent {total}, stored at kill {at_kill} (first poll {first}), "
          f"stored after restart {final}, distinct {len(set(ids))}")
    assert len(ids) == len(set(ids)) == total, log.read_text()[-2000:]
    assert set(ids) == {str(o.observation_id) for o in observations}


async def test_two_replicas_on_a_shared_subscription_store_each_once(
        tmp_path: Path, mosquitto_url: str, database_url: str) -> None:
    prefix = f"otaudit-test/{uuid.uuid4().hex[:8]}"
    group = f"g{uuid.uuid4().hex[:6]}"
    engine = make_engine(database_url)
    init_db(engine)
    replicas = []
    stop = asyncio.Event()
    for i in range(2):
        settings = Settings(broker_url=mosquitto_url, topic_prefix=prefix,
                            server_client_id=f"replica-{i}-{group}", server_shared_group=group)
        ready, stats = asyncio.Event(), ServerStats()
        task = asyncio.create_task(serve(Ingestor(engine, topic_prefix=prefix), settings,
                                         ready=ready, stop=stop, stats=stats))
        replicas.append((task, ready, stats))
    for _, ready, _ in replicas:
        await asyncio.wait_for(ready.wait(), 10)
    total = 200
    observations = [make_observation(asset=f"sw-{i % 20}", minutes=i) for i in range(total)]
    await publish(mosquitto_url, observations, prefix)
    count = await wait_for_count(database_url, total, 30)
    await asyncio.sleep(0.3)
    stop.set()
    for task, _, _ in replicas:
        await task
    shares = [stats.stored + stats.duplicates for _, _, stats in replicas]
    print(f"\nreplicas: sent {total}, stored {count}, per replica {shares}")
    ids = stored_ids(database_url)
    assert len(ids) == len(set(ids)) == total
    assert sum(shares) == total and all(s > 0 for s in shares)
    engine.dispose()
