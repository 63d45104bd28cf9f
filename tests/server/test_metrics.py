"""``/metrics`` scraped over a socket and parsed with prometheus-client's own parser: the
values move with ingest (stored, duplicate, rejected by code, lag, drift), the database
(findings by outcome) and the collectors' status topic."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from datetime import timedelta

import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from otaudit.observation import utcnow
from otaudit.server.db import init_db, make_engine
from otaudit.server.ingest import Ingestor
from otaudit.server.metrics import ServerMetrics, install, metrics_asgi_app, parse_listen
from otaudit.server.presence import Presence

from support.observations import make_observation
from tests_helpers import free_tcp_port


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def message(obs):
    return f"otaudit/v1/{obs.site}/{obs.collector_id}/obs/{obs.asset.id}", obs.to_json()


def test_metrics_move_with_ingest_and_status(database_url: str) -> None:
    engine = make_engine(database_url)
    init_db(engine)
    presence = Presence(interval=60, intervals=3)
    metrics = ServerMetrics(engine, presence, ttl=0)
    ingestor = Ingestor(engine)
    ingestor.observers.append(metrics.observe)
    port = free_tcp_port()
    server = metrics.serve("127.0.0.1", port)
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        before = scrape(url)
        assert before[("otaudit_ingest_observations_total", (("outcome", "stored"),))] == 0
        first = make_observation(facts={"identity.firmware_version": "V1"})
        second = make_observation(facts={"identity.firmware_version": "V2"}, minutes=5)
        ingestor.ingest([message(first), message(first),
                         ("otaudit/v1/plant-a/c1/obs/plc-1", b"{not json")])
        ingestor.ingest([message(second), ("otaudit/wrong", b"{}")])
        presence.status("otaudit/v1/plant-a/c2/status", json.dumps(
            {"state": "offline", "at": (utcnow() - timedelta(minutes=1)).isoformat()}).encode())
        after = scrape(url)
    finally:
        server.shutdown()
        engine.dispose()
    counted = {o: after[("otaudit_ingest_observations_total", (("outcome", o),))]
               for o in ("stored", "duplicate", "rejected")}
    assert counted == {"stored": 2, "duplicate": 1, "rejected": 2}
    assert after[("otaudit_rejected_messages_total", (("reason", "invalid"),))] == 1
    assert after[("otaudit_rejected_messages_total", (("reason", "topic"),))] == 1
    assert after[("otaudit_ingest_lag_seconds_count", ())] == 2
    assert after[("otaudit_ingest_lag_seconds_sum", ())] > 3600  # observed on 2026-11-01
    assert after[("otaudit_drift_events_total", (("kind", "firmware"),
                                                 ("severity", "high")))] == 1
    findings = {dict(labels)["outcome"]: value for (name, labels), value in after.items()
                if name == "otaudit_findings"}
    assert findings and sum(findings.values()) > 0
    assert after[("otaudit_alert_dead_letters", ())] == 0
    seen = {dict(labels)["collector"]: value for (name, labels), value in after.items()
            if name == "otaudit_collector_last_seen_timestamp_seconds"}
    assert set(seen) == {"c1", "c2"}
    assert abs(seen["c2"] - (utcnow() - timedelta(minutes=1)).timestamp()) < 30
    assert after[("otaudit_collector_online", (("collector", "c2"), ("site", "plant-a")))] == 0


def test_the_asgi_app_serves_the_installed_metrics() -> None:
    metrics = install(ServerMetrics())
    metrics.observations.labels("stored").inc(7)
    app = metrics_asgi_app()
    sent: list[dict] = []

    async def call() -> None:
        scope = {"type": "http", "method": "GET", "path": "/metrics", "headers": [],
                 "query_string": b""}

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(msg: dict) -> None:
            sent.append(msg)

        await app(scope, receive, send)

    asyncio.run(call())
    assert sent[0]["status"] == 200
    body = b"".join(m.get("body", b"") for m in sent[1:]).decode()
    values = {s.name: s.value for f in text_string_to_metric_families(body) for s in f.samples
              if s.labels.get("outcome") == "stored"}
    assert values["otaudit_ingest_observations_total"] == 7


def test_silent_collectors_are_reported_once_until_heard_again() -> None:
    presence = Presence(interval=10, intervals=3)
    now = utcnow()
    presence.heard("plant-a", "c1", now - timedelta(seconds=31))
    presence.heard("plant-a", "c2", now - timedelta(seconds=29))
    [alert] = presence.silent(now)
    assert (alert.type, alert.site, alert.data["collector"]) == ("collector_silent",
                                                                 "plant-a", "c1")
    assert presence.silent(now) == []
    presence.heard("plant-a", "c1", now)
    assert presence.silent(now + timedelta(seconds=31))[0].data["collector"] == "c1"
    assert presence.status("otaudit/v1/plant-a/c3/obs/x", b"{}") is False
    assert presence.status("otaudit/v1/plant-a/c3/status", b"[1]") is False


def test_parse_listen() -> None:
    assert parse_listen("127.0.0.1:9464") == ("127.0.0.1", 9464)
    assert parse_listen("[::1]:9464") == ("::1", 9464)
    for bad in ("9464", ":9464", "host:", "host:0", "host:99999"):
        try:
            parse_listen(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


def test_a_scrape_survives_a_broken_database(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    init_db(engine)
    metrics = ServerMetrics(engine, ttl=0)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE findings"))
    port = free_tcp_port()
    server = metrics.serve("127.0.0.1", port)
    try:
        got = scrape(f"http://127.0.0.1:{port}/metrics")
    finally:
        server.shutdown()
    assert ("otaudit_ingest_observations_total", (("outcome", "stored"),)) in got
