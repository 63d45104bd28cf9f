"""Webhook delivery: a JSON POST signed with HMAC-SHA256, retried with backoff and jitter.

Headers: ``X-Otaudit-Timestamp`` (Unix seconds), ``X-Otaudit-Signature``
(``sha256=<hex>`` of HMAC-SHA256 over ``<timestamp>.<body>`` with the shared secret, as
Stripe and GitHub do: the receiver recomputes it and refuses old timestamps against
replays), ``X-Otaudit-Event`` (the alert type) and ``X-Otaudit-Delivery`` (the alert id, the
same on every attempt: the receiver can drop duplicates). A 2xx is delivered; a 408, 429,
5xx or a network error is retried after ``base · 2^(attempt-1)`` seconds (at most ``cap``),
with full jitter; any other status is final. ``deliver`` returns None when delivered, else
the last error (the dispatcher keeps the alert as a dead letter).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from otaudit.server.alerts.model import Alert

RETRY_STATUS = frozenset({408, 429})


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of ``<timestamp>.<body>``."""
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: bytes, timestamp: str, body: bytes, signature: str) -> bool:
    """What a receiver does (constant-time comparison)."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def redact_url(url: str) -> str:
    """The URL without user info or query (where a token may hide): for logs and dead
    letters."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class _Retry(Exception):
    pass


@dataclass
class WebhookSender:
    url: str
    secret: bytes = field(repr=False)
    timeout: float = 5.0
    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time
    channel: str = "webhook"

    @property
    def target(self) -> str:
        return redact_url(self.url)

    def delay(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base · 2^(attempt-1))]."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))

    def deliver(self, alert: Alert) -> tuple[str | None, int]:
        """Send ``alert``; ``(None, attempts)`` when delivered, else ``(error, attempts)``."""
        body = json.dumps(alert.as_dict(), sort_keys=True, default=str).encode()
        error = "not attempted"
        for attempt in range(1, self.max_attempts + 1):
            try:
                self._post(alert, body)
                return None, attempt
            except _Retry as exc:
                error = str(exc)
            except ValueError as exc:  # final (4xx)
                return str(exc), attempt
            if attempt < self.max_attempts:
                self.sleep(self.delay(attempt))
        return error, self.max_attempts

    def _post(self, alert: Alert, body: bytes) -> None:
        stamp = str(int(self.clock()))
        request = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": "otaudit-alerts/1",
            "X-Otaudit-Timestamp": stamp, "X-Otaudit-Signature": sign(self.secret, stamp, body),
            "X-Otaudit-Event": alert.type, "X-Otaudit-Delivery": alert.id})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read(1024)
        except urllib.error.HTTPError as exc:
            if exc.code >= 500 or exc.code in RETRY_STATUS:
                raise _Retry(f"HTTP {exc.code} from {self.target}") from None
            raise ValueError(f"HTTP {exc.code} from {self.target} (not retried)") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise _Retry(f"{self.target}: {reason}") from None
