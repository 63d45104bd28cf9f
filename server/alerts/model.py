"""The alert every channel sends (JSON for the webhook, structured data for syslog)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from otaudit.observation import utcnow

AlertType = Literal["new_fail", "new_advisory", "drift", "collector_silent"]
SEVERITIES = ("info", "low", "medium", "high", "critical")


@dataclass(frozen=True)
class Alert:
    """One alert: ``type``, ``severity`` (info…critical), where (site, asset), a one-line
    ``summary`` and the ``data`` it is about (a drift event, a finding, an advisory)."""

    type: AlertType
    severity: str
    site: str | None
    summary: str
    asset_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_at: datetime = field(default_factory=utcnow)

    def as_dict(self) -> dict[str, Any]:
        """The JSON body of the webhook (``schema``: 1)."""
        return {"schema": 1, "id": self.id, "type": self.type, "severity": self.severity,
                "site": self.site, "asset_id": self.asset_id, "summary": self.summary,
                "created_at": self.created_at.isoformat(), "data": self.data}
