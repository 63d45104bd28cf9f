"""The collector's presence on MQTT: ``<prefix>/<site>/<collector>/status`` (retained JSON).

``{"state": "online", ...counters}`` on every connect and heartbeat; the broker publishes
the retained last will ``{"state": "offline", "reason": "connection lost"}`` when the
collector vanishes, and a clean shutdown publishes ``offline`` with ``"reason": "shutdown"``.
Its ``outbox`` part counts the entries per state with the age of the oldest; ``otaudit
collector status`` reads the same from the outbox file (``outbox_status``), with or without
a running daemon or a broker.
"""

from __future__ import annotations

import fcntl
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from otaudit.collector.outbox import read_quarantine, read_states

STATUS_SEGMENT = "status"


def status_topic(prefix: str, site: str, collector: str) -> str:
    return f"{prefix}/{site}/{collector}/{STATUS_SEGMENT}"


def encode(status: dict[str, Any]) -> bytes:
    return json.dumps(status, sort_keys=True, default=str).encode()


def will(site: str, collector: str, **extra: Any) -> bytes:
    """The last will: what the broker says about us when the connection dies."""
    return encode({"state": "offline", "reason": "connection lost", "site": site,
                   "collector": collector, **extra})


def outbox_status(path: Path, quarantine: int = 10) -> dict[str, Any]:
    """The states of the outbox file at ``path``, its newest quarantined items and the pid of
    the collector process using it (None: none); raises ``FileNotFoundError`` or
    ``sqlite3.Error``."""
    if not path.exists():
        raise FileNotFoundError(f"no outbox at {path} (this collector has stored nothing yet, "
                                "or its state directory is elsewhere: --state-dir)")
    return {"path": str(path), "in_use_by": _lock_holder(path), **read_states(path),
            "quarantine": read_quarantine(path, quarantine) if quarantine else []}


def _lock_holder(path: Path) -> int | None:
    """The pid in the outbox's lock file while a process holds the lock."""
    try:
        fd = os.open(path.with_suffix(".lock"), os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.1f} s"


def render(data: dict[str, Any]) -> str:
    """``collector status`` as text."""
    holder = data.get("in_use_by")
    lines = [f"outbox {data['path']}: {data['entries']} entries, {data['bytes']} bytes "
             f"({f'in use by collector process {holder}' if holder else 'no collector running'})",
             *(f"  {label:<24}{data[key]['count']:>8}   oldest {_age(data[key]['oldest_age'])}"
               for key, label in (("queued", "queued"), ("sent", "sent, awaiting receipt"))),
             f"  {'receipted (total)':<24}{data['receipted']:>8}",
             f"  {'rejected (total)':<24}{data['rejected']:>8}",
             f"  {'damaged (total)':<24}{data['corrupt']:>8}",
             f"  {'quarantined now':<24}{data['quarantined']:>8}"]
    if data.get("quarantine"):
        lines.append("quarantine, newest first:")
        for item in data["quarantine"]:
            at = datetime.fromtimestamp(item["at"], UTC).isoformat(timespec="seconds")
            lines.append(f"  {at}  {item['key']}  {item['topic'] or '-'}  {item['reason']}")
    return "\n".join(lines)
