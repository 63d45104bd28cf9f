"""Syslog delivery: RFC 5424 with structured data (or CEF in the message) over UDP or TCP.

One message per alert::

    <PRI>1 2026-12-07T05:01:02.123456+00:00 host otaudit PID drift [otaudit@32473
    type="drift" severity="high" site="plant-a" asset="plc-1" id="…" fact="…"] summary

``PRI`` is facility ``local0`` (16) × 8 + the syslog severity of the alert (critical 2,
high 3, medium 4, low 5, info 6). The SD-ID uses the enterprise number 32473 that RFC 5612
reserves for documentation; parameter values escape ``"``, ``\\`` and ``]`` (RFC 5424 6.3.3).
With ``fmt="cef"`` the message part is an ArcSight CEF:0 record instead of the summary.
TCP frames each message by octet counting (RFC 6587 3.4.1: ``<length> <message>``); a TCP
connection is made per delivery. A failure is retried like the webhook (backoff, jitter).
"""

from __future__ import annotations

import os
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from otaudit import __version__
from otaudit.errors import InputError
from otaudit.server.alerts.model import Alert

FACILITY_LOCAL0 = 16
SYSLOG_SEVERITY = {"critical": 2, "high": 3, "medium": 4, "low": 5, "info": 6}
CEF_SEVERITY = {"critical": 10, "high": 8, "medium": 5, "low": 3, "info": 1}
SD_ID = "otaudit@32473"
DATA_PARAMS = ("fact", "kind", "policy", "check_id", "advisory_id", "cve", "collector",
               "known_exploited")


def sd_escape(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def cef_escape(value: Any, header: bool = False) -> str:
    text = str(value).replace("\\", "\\\\").replace("\r", " ").replace("\n", " ")
    return text.replace("|", "\\|") if header else text.replace("=", "\\=")


def structured_data(alert: Alert) -> str:
    params = {"type": alert.type, "severity": alert.severity, "site": alert.site,
              "asset": alert.asset_id, "id": alert.id}
    params.update({k: alert.data[k] for k in DATA_PARAMS if alert.data.get(k) is not None})
    inner = " ".join(f'{k}="{sd_escape(v)}"' for k, v in params.items() if v is not None)
    return f"[{SD_ID} {inner}]"


def cef(alert: Alert) -> str:
    """The alert as a CEF:0 record."""
    ext = {"rt": int(alert.created_at.timestamp() * 1000), "cs1Label": "site",
           "cs1": alert.site, "dhost": alert.asset_id, "externalId": alert.id,
           "msg": alert.summary}
    for i, key in enumerate(("fact", "kind", "cve"), start=2):
        if alert.data.get(key) is not None:
            ext[f"cs{i}Label"], ext[f"cs{i}"] = key, alert.data[key]
    body = " ".join(f"{k}={cef_escape(v)}" for k, v in ext.items() if v is not None)
    head = "|".join(cef_escape(v, header=True) for v in (
        "CEF:0", "otaudit", "otaudit", __version__, alert.type, alert.summary,
        CEF_SEVERITY.get(alert.severity, 5)))
    return f"{head}|{body}"


def format_message(alert: Alert, fmt: str = "rfc5424", hostname: str | None = None) -> bytes:
    pri = FACILITY_LOCAL0 * 8 + SYSLOG_SEVERITY.get(alert.severity, 4)
    stamp = alert.created_at.isoformat(timespec="microseconds")
    host = (hostname or socket.gethostname() or "-")[:255].replace(" ", "_")
    msg = cef(alert) if fmt == "cef" else alert.summary
    header = f"<{pri}>1 {stamp} {host} otaudit {os.getpid()} {alert.type}"
    return f"{header} {structured_data(alert)} \ufeff{msg}".encode()


@dataclass
class SyslogSender:
    host: str
    port: int
    protocol: Literal["udp", "tcp"] = "udp"
    fmt: Literal["rfc5424", "cef"] = "rfc5424"
    timeout: float = 5.0
    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0
    sleep: Callable[[float], None] = time.sleep
    channel: str = "syslog"

    @classmethod
    def from_target(cls, target: str, **kwargs: Any) -> SyslogSender:
        """``udp://host:514`` or ``tcp://host:601``; InputError otherwise."""
        from urllib.parse import urlsplit

        parts = urlsplit(target)
        try:
            port = parts.port
        except ValueError:
            port = None
        if parts.scheme not in ("udp", "tcp") or not parts.hostname or port is None:
            raise InputError("OTAUDIT_ALERT_SYSLOG_TARGET",
                             [f"{target!r}: expected udp://HOST:PORT or tcp://HOST:PORT"])
        return cls(parts.hostname, port, parts.scheme, **kwargs)  # type: ignore[arg-type]

    @property
    def target(self) -> str:
        return f"{self.protocol}://{self.host}:{self.port}"

    def deliver(self, alert: Alert) -> tuple[str | None, int]:
        data = format_message(alert, self.fmt)
        error = "not attempted"
        for attempt in range(1, self.max_attempts + 1):
            try:
                self._send(data)
                return None, attempt
            except OSError as exc:
                error = f"{self.target}: {exc.strerror or exc}"
            if attempt < self.max_attempts:
                self.sleep(random.uniform(0, min(self.max_delay,
                                                 self.base_delay * 2 ** (attempt - 1))))
        return error, self.max_attempts

    def _send(self, data: bytes) -> None:
        if self.protocol == "udp":
            with socket.socket(_family(self.host), socket.SOCK_DGRAM) as sock:
                sock.sendto(data, (self.host, self.port))
            return
        with socket.create_connection((self.host, self.port), timeout=self.timeout) as sock:
            sock.sendall(str(len(data)).encode() + b" " + data)


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
