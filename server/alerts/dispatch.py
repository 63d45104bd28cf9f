"""Delivering alerts off the ingest path: a queue, one worker thread, dead letters.

``AlertDispatcher.submit`` returns at once (ingest never waits for a webhook); the worker
hands each alert to every sender (``WebhookSender``, ``SyslogSender``: each retries with
backoff and jitter) and writes an alert a sender gave up on to ``alert_dead_letters``
(channel, target without credentials, body, attempts, last error). ``flush`` waits until
everything submitted was handled (tests, shutdown). ``from_settings`` builds it from the
``OTAUDIT_ALERT_*`` settings; the webhook secret never appears in a log line, a dead letter
or an exception.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import sqlalchemy as sa

from otaudit.errors import InputError, StateError
from otaudit.observation import utcnow
from otaudit.server.alerts.model import SEVERITIES, Alert

if TYPE_CHECKING:
    from otaudit.settings import Settings

log = logging.getLogger(__name__)


class Sender(Protocol):
    channel: str

    @property
    def target(self) -> str: ...

    def deliver(self, alert: Alert) -> tuple[str | None, int]: ...


class AlertDispatcher:
    """Delivers alerts of at least ``min_severity`` to ``senders`` in a background thread."""

    def __init__(self, senders: Sequence[Sender], engine: sa.Engine | None = None,
                 min_severity: str = "low") -> None:
        self.senders = list(senders)
        self.engine = engine
        self.min_rank = SEVERITIES.index(min_severity)
        self.counts: dict[str, int] = {"submitted": 0, "delivered": 0, "dead": 0}
        self._queue: queue.Queue[Alert | None] = queue.Queue()
        self._idle = threading.Condition()
        self._busy = 0
        self._thread = threading.Thread(target=self._run, name="otaudit-alerts", daemon=True)
        self._thread.start()

    def submit(self, alerts: Sequence[Alert]) -> int:
        """Queue the alerts severe enough; returns how many."""
        chosen = [a for a in alerts
                  if SEVERITIES.index(a.severity if a.severity in SEVERITIES else "medium")
                  >= self.min_rank]
        with self._idle:
            self._busy += len(chosen)
            self.counts["submitted"] += len(chosen)
        for alert in chosen:
            self._queue.put(alert)
        return len(chosen)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every submitted alert was delivered or dead-lettered."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)

    def close(self, timeout: float = 30.0) -> None:
        self.flush(timeout)
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while (alert := self._queue.get()) is not None:
            try:
                for sender in self.senders:
                    self._deliver(sender, alert)
            except Exception:  # a bug must not stop the worker
                log.exception("alert %s could not be handled", alert.id)
            finally:
                with self._idle:
                    self._busy -= 1
                    self._idle.notify_all()

    def _deliver(self, sender: Sender, alert: Alert) -> None:
        error, attempts = sender.deliver(alert)
        if error is None:
            self.counts["delivered"] += 1
            return
        self.counts["dead"] += 1
        log.warning("alert %s (%s) not delivered to %s after %d attempts: %s; kept as a dead "
                    "letter", alert.id, alert.type, sender.target, attempts, error)
        if self.engine is None:
            return
        from otaudit.server.alerts.deadletter import DeadLetter
        from otaudit.server.db import session_factory

        try:
            with session_factory(self.engine).begin() as session:
                session.add(DeadLetter(created_at=utcnow(), channel=sender.channel,
                                       target=sender.target[:300], event_type=alert.type,
                                       site=alert.site, payload=alert.as_dict(),
                                       attempts=attempts, last_error=error[:4000]))
        except Exception as exc:
            log.error("could not keep the dead letter of alert %s: %s", alert.id,
                      type(exc).__name__)


def webhook_secret(settings: Settings) -> bytes:
    """The webhook's HMAC secret: OTAUDIT_ALERT_WEBHOOK_SECRET or the file named by
    OTAUDIT_ALERT_WEBHOOK_SECRET_FILE; StateError (naming the file, never the secret)."""
    if settings.alert_webhook_secret is not None:
        secret = settings.alert_webhook_secret.get_secret_value().encode()
    elif settings.alert_webhook_secret_file:
        path = Path(settings.alert_webhook_secret_file)
        try:
            secret = path.read_bytes().strip()
        except OSError as exc:
            raise StateError(f"cannot read the webhook secret file {path}: "
                             f"{exc.strerror or exc}") from None
    else:
        raise InputError("OTAUDIT_ALERT_WEBHOOK_URL", [
            "a webhook needs a signing secret: OTAUDIT_ALERT_WEBHOOK_SECRET or "
            "OTAUDIT_ALERT_WEBHOOK_SECRET_FILE"])
    if len(secret) < 16:
        raise InputError("webhook secret", ["shorter than 16 bytes: use a random secret "
                                            "(e.g. `openssl rand -hex 32`)"])
    return secret


def from_settings(settings: Settings, engine: sa.Engine | None = None,
                  **overrides: Any) -> AlertDispatcher | None:
    """The dispatcher the settings describe (None when no channel is configured)."""
    from otaudit.server.alerts.syslog import SyslogSender
    from otaudit.server.alerts.webhook import WebhookSender

    retry = {"max_attempts": settings.alert_max_attempts, "base_delay": settings.alert_retry_base,
             "max_delay": settings.alert_retry_max, "timeout": settings.alert_timeout,
             **overrides}
    senders: list[Sender] = []
    if settings.alert_webhook_url:
        if not settings.alert_webhook_url.startswith(("http://", "https://")):
            raise InputError("OTAUDIT_ALERT_WEBHOOK_URL",
                             [f"{settings.alert_webhook_url!r}: expected http:// or https://"])
        senders.append(WebhookSender(settings.alert_webhook_url, webhook_secret(settings),
                                     **retry))
    if settings.alert_syslog_target:
        senders.append(SyslogSender.from_target(settings.alert_syslog_target,
                                                fmt=settings.alert_syslog_format, **retry))
    if not senders:
        return None
    return AlertDispatcher(senders, engine, settings.alert_min_severity)
