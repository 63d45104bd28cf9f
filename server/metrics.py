"""Prometheus metrics of the server (prometheus-client), on a registry of their own.

From the ingest path (``Ingestor.observers``, counted as batches commit):

- ``otaudit_ingest_observations_total{outcome}``: messages stored / duplicate / rejected
  (the ingest rate is its ``rate()``);
- ``otaudit_ingest_lag_seconds``: histogram of observed_at → stored, per stored observation;
- ``otaudit_rejected_messages_total{reason}``: rejections by code (``invalid``, ``topic``,
  ``oversize``, ``nul``, ``mismatch``, ``future``, ``bad_signature``, ``owner`` …);
- ``otaudit_drift_events_total{kind,severity}``.

From the database at scrape time (cached ``ttl`` seconds so a scrape costs at most one set of
queries): ``otaudit_findings{site,outcome}``, ``otaudit_open_advisories{site,known_exploited}``,
``otaudit_alert_dead_letters``. From ``Presence``: ``otaudit_collector_last_seen_timestamp_seconds
{site,collector}`` and ``otaudit_collector_online{site,collector}`` (status topic state).

``metrics_asgi_app()`` is the ASGI app of the current ``ServerMetrics`` (to mount at
``/metrics`` of the API); ``ServerMetrics.serve(host, port)`` serves it with prometheus-client's
own HTTP server (``otaudit server run --metrics 127.0.0.1:9464``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Histogram, make_asgi_app
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from otaudit.mqtt import parse_observation_topic
from otaudit.observation import utcnow

if TYPE_CHECKING:
    from otaudit.server.ingest import IngestResult
    from otaudit.server.presence import Presence

log = logging.getLogger(__name__)
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400)
OUTCOMES = ("stored", "duplicate", "rejected")


class DatabaseCollector(Collector):
    """Gauges read from the database at scrape time, cached for ``ttl`` seconds."""

    def __init__(self, engine: sa.Engine, ttl: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.engine, self.ttl, self.clock = engine, ttl, clock
        self._cache: tuple[float, list[GaugeMetricFamily]] | None = None
        self._lock = threading.Lock()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            if self._cache is None or self.clock() - self._cache[0] >= self.ttl:
                try:
                    self._cache = (self.clock(), self._read())
                except Exception as exc:  # a scrape never fails because of the database
                    log.warning("metrics: cannot read the database (%s)", type(exc).__name__)
                    return iter(self._cache[1] if self._cache else [])
            return iter(self._cache[1])

    def _read(self) -> list[GaugeMetricFamily]:
        from otaudit.server.advisories.db import KevEntryRow, PatchStatusRow
        from otaudit.server.alerts.deadletter import DeadLetter
        from otaudit.server.db import FindingRow

        findings = GaugeMetricFamily("otaudit_findings", "Current findings by outcome",
                                     labels=["site", "outcome"])
        advisories = GaugeMetricFamily(
            "otaudit_open_advisories", "Open advisory x CVE pairs on assets",
            labels=["site", "known_exploited"])
        dead = GaugeMetricFamily("otaudit_alert_dead_letters",
                                 "Alerts not delivered after their last attempt")
        with self.engine.connect() as conn:
            for site, status, count in conn.execute(
                    sa.select(FindingRow.site, FindingRow.status, sa.func.count())
                    .group_by(FindingRow.site, FindingRow.status)):
                findings.add_metric([site, status], count)
            exploited = KevEntryRow.cve.is_not(None)
            for site, known, count in conn.execute(
                    sa.select(PatchStatusRow.site, exploited, sa.func.count())
                    .outerjoin(KevEntryRow, KevEntryRow.cve == PatchStatusRow.cve)
                    .where(PatchStatusRow.state == "open")
                    .group_by(PatchStatusRow.site, exploited)):
                advisories.add_metric([site, "true" if known else "false"], count)
            dead.add_metric([], conn.execute(sa.select(sa.func.count())
                                             .select_from(DeadLetter)).scalar() or 0)
        return [findings, advisories, dead]


class PresenceCollector(Collector):
    def __init__(self, presence: Presence) -> None:
        self.presence = presence

    def collect(self) -> Iterator[GaugeMetricFamily]:
        seen = GaugeMetricFamily("otaudit_collector_last_seen_timestamp_seconds",
                                 "When each collector was last heard from (status or "
                                 "observation), Unix time", labels=["site", "collector"])
        online = GaugeMetricFamily("otaudit_collector_online",
                                   "1 when the collector's last status said online",
                                   labels=["site", "collector"])
        for (site, collector), entry in sorted(self.presence.snapshot().items()):
            seen.add_metric([site, collector], entry.at.timestamp())
            online.add_metric([site, collector], 1.0 if entry.state == "online" else 0.0)
        yield seen
        yield online


class ServerMetrics:
    """The server's metrics on their own registry (``observe`` is an ingest observer)."""

    def __init__(self, engine: sa.Engine | None = None, presence: Presence | None = None,
                 prefix: str = "otaudit/v1", ttl: float = 10.0) -> None:
        self.registry = CollectorRegistry()
        self.prefix = prefix
        self.presence = presence
        self.observations = Counter("otaudit_ingest_observations", "Observation messages "
                                    "by outcome", ["outcome"], registry=self.registry)
        for outcome in OUTCOMES:
            self.observations.labels(outcome)
        self.lag = Histogram("otaudit_ingest_lag_seconds", "From an observation's "
                             "observed_at to its storage", buckets=LAG_BUCKETS,
                             registry=self.registry)
        self.rejected = Counter("otaudit_rejected_messages", "Rejected messages by reason",
                                ["reason"], registry=self.registry)
        self.drift = Counter("otaudit_drift_events", "Drift events detected at ingest",
                             ["kind", "severity"], registry=self.registry)
        if engine is not None:
            self.registry.register(DatabaseCollector(engine, ttl))
        if presence is not None:
            self.registry.register(PresenceCollector(presence))

    def observe(self, result: IngestResult) -> None:
        """Count a committed batch (``Ingestor.observers``)."""
        now = utcnow()
        for outcome in result.outcomes:
            self.observations.labels(outcome.outcome).inc()
            if outcome.outcome == "rejected":
                self.rejected.labels(outcome.code or "invalid").inc()
            elif self.presence is not None and outcome.collector:
                where = parse_observation_topic(self.prefix, outcome.topic)
                if where:
                    self.presence.heard(where[0], outcome.collector, now)
        for at in result.observed:
            self.lag.observe(max(0.0, (now - at).total_seconds()))
        for event in result.drift:
            self.drift.labels(event.kind, event.severity).inc()

    def asgi_app(self) -> Any:
        return make_asgi_app(self.registry)

    def serve(self, host: str, port: int) -> Any:
        """Serve ``/metrics`` with prometheus-client's HTTP server in a thread; returns the
        server (``shutdown()`` stops it)."""
        from prometheus_client import start_http_server

        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server


_current: ServerMetrics | None = None


def install(metrics: ServerMetrics) -> ServerMetrics:
    """Make ``metrics`` the one ``metrics_asgi_app`` serves."""
    global _current
    _current = metrics
    return metrics


def metrics_asgi_app() -> Any:
    """The ASGI app of the installed ``ServerMetrics`` (an empty one when none is): mount it
    at ``/metrics``."""
    global _current
    if _current is None:
        _current = ServerMetrics()
    return _current.asgi_app()


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9464`` for IPv6) of ``--metrics``; ValueError when not."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r}: expected HOST:PORT (e.g. 127.0.0.1:9464)")
    return host, int(port)
