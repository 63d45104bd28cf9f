"""The collector's presence on MQTT: ``<prefix>/<site>/<collector>/status`` (retained JSON).

``{"state": "online", ...counters}`` on every connect and heartbeat; the broker publishes
the retained last will ``{"state": "offline", "reason": "connection lost"}`` when the
collector vanishes, and a clean shutdown publishes ``offline`` with ``"reason": "shutdown"``.
"""

from __future__ import annotations

import json
from typing import Any

STATUS_SEGMENT = "status"


def status_topic(prefix: str, site: str, collector: str) -> str:
    return f"{prefix}/{site}/{collector}/{STATUS_SEGMENT}"


def encode(status: dict[str, Any]) -> bytes:
    return json.dumps(status, sort_keys=True, default=str).encode()


def will(site: str, collector: str, **extra: Any) -> bytes:
    """The last will: what the broker says about us when the connection dies."""
    return encode({"state": "offline", "reason": "connection lost", "site": site,
                   "collector": collector, **extra})
