"""The durable outbox: every observation is written here before it is published.

An SQLite file in the collector's state directory (WAL journal, ``synchronous=FULL``:
``put`` returns only once the entry is on disk). Entries leave it only after the broker
acknowledged them (QoS 1 PUBACK), oldest first. The outbox is bounded by entries and
bytes; when it is full no probe run starts until it drains (``Backpressure``), and no
entry is ever dropped. A probe run reserves the entry of its observation before it
starts, so the entry bound holds exactly; the byte bound can be exceeded by the
observations of the runs in flight.

``seq`` numbers never repeat for a collector, even when the state directory is lost:
the counter of a new file starts at the current time in microseconds. The seq of an
entry is the one a signed envelope carries (``otaudit.signing``), so a re-sent entry
is byte-identical to the first send. One process at a time may use an outbox (a lock
file next to it).
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from otaudit.settings import Settings

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at REAL NOT NULL
)
"""


class OutboxError(Exception):
    """The outbox cannot be opened (in use by another process, unwritable, corrupt)."""


@dataclass(frozen=True)
class Entry:
    seq: int
    key: str
    topic: str
    payload: bytes


def default_state_dir() -> Path:
    """``$STATE_DIRECTORY`` (systemd ``StateDirectory=``), else the XDG state home."""
    if os.environ.get("STATE_DIRECTORY"):
        return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "otaudit"


def outbox_path(settings: Settings, collector: str) -> Path:
    return (settings.state_dir or default_state_dir()) / f"outbox-{collector}.db"


class Outbox:
    """A bounded, durable FIFO of MQTT messages (thread-safe; async helpers for the loop)."""

    def __init__(self, path: Path, *, max_entries: int, max_bytes: int,
                 lock_timeout: float = 0.0) -> None:
        self.path = Path(path)
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._lockfile = self._acquire(lock_timeout)
        try:
            if not self.path.exists():  # observations describe the plant: owner only
                os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(SCHEMA)
            if self._db.execute("SELECT 1 FROM sqlite_sequence WHERE name='outbox'").fetchone(
                    ) is None:
                start = time.time_ns() // 1000  # seq never repeats across lost state dirs
                self._db.execute("INSERT INTO sqlite_sequence(name, seq) VALUES('outbox', ?)",
                                 (start,))
            count, size = self._db.execute(
                "SELECT count(*), coalesce(sum(length(payload)), 0) FROM outbox").fetchone()
        except (sqlite3.Error, OSError) as exc:
            self._release()
            raise OutboxError(f"outbox {self.path}: {exc}") from None
        self.entries, self.bytes = int(count), int(size)
        self.reserved = 0  # entries promised to probe runs in flight (Backpressure)
        self.added = asyncio.Event()  # set on every put (the forwarder's wake-up)
        self._room = asyncio.Event()
        self._empty = asyncio.Event()
        self._update_events()

    @classmethod
    def open(cls, settings: Settings, collector: str, *, lock_timeout: float = 0.0) -> Outbox:
        path = outbox_path(settings, collector)
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise OutboxError(f"state directory {path.parent}: {exc.strerror}") from None
        return cls(path, max_entries=settings.outbox_max_entries,
                   max_bytes=settings.outbox_max_bytes, lock_timeout=lock_timeout)

    def _acquire(self, timeout: float) -> int:
        lock_path = self.path.with_suffix(".lock")
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise OutboxError(f"outbox lock {lock_path}: {exc.strerror}") from None
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                    os.close(fd)
                    raise OutboxError(f"outbox {self.path} is in use by another collector "
                                      f"process (pid {holder})") from None
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        return fd

    def _release(self) -> None:
        if self._lockfile >= 0:
            fcntl.flock(self._lockfile, fcntl.LOCK_UN)
            os.close(self._lockfile)
            self._lockfile = -1

    def close(self) -> None:
        with self._lock:
            if self._lockfile >= 0:
                self._db.close()
                self._release()

    # -- synchronous core (any thread) --------------------------------------------------------

    @property
    def full(self) -> bool:
        return (self.entries + self.reserved >= self.max_entries
                or self.bytes >= self.max_bytes)

    def append(self, key: str, topic: str, payload: bytes | Callable[[int], bytes]) -> int:
        """Store one message durably; ``payload`` may be built from the seq (signing).

        Idempotent on ``key`` (the observation id): storing it again returns its seq.
        """
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute("SELECT seq FROM outbox WHERE key = ?", (key,)).fetchone()
                if row:
                    db.execute("ROLLBACK")
                    return int(row[0])
                cur = db.execute("INSERT INTO outbox(key, topic, payload, created_at) "
                                 "VALUES (?, ?, ?, ?)", (key, topic, b"", time.time()))
                seq = int(cur.lastrowid)  # type: ignore[arg-type]
                data = payload(seq) if callable(payload) else payload
                db.execute("UPDATE outbox SET payload = ? WHERE seq = ?", (data, seq))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self.entries += 1
            self.bytes += len(data)
            return seq

    def peek(self, after: int = 0, limit: int = 100) -> list[Entry]:
        """The oldest entries with a seq above ``after``, in order."""
        with self._lock:
            rows = self._db.execute("SELECT seq, key, topic, payload FROM outbox WHERE seq > ? "
                                    "ORDER BY seq LIMIT ?", (after, limit)).fetchall()
        return [Entry(int(s), k, t, bytes(p)) for s, k, t, p in rows]

    def remove(self, seqs: Iterable[int]) -> int:
        """Delete acknowledged entries (one transaction); returns how many were deleted."""
        seqs = list(seqs)
        if not seqs:
            return 0
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                marks = ",".join("?" * len(seqs))
                gone, size = db.execute(f"SELECT count(*), coalesce(sum(length(payload)), 0) "
                                        f"FROM outbox WHERE seq IN ({marks})", seqs).fetchone()
                db.execute(f"DELETE FROM outbox WHERE seq IN ({marks})", seqs)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self.entries -= int(gone)
            self.bytes -= int(size)
            return int(gone)

    # -- asyncio helpers (event loop thread) --------------------------------------------------

    def reserve(self) -> None:
        self.reserved += 1
        self._update_events()

    def release(self) -> None:
        self.reserved -= 1
        self._update_events()

    def _update_events(self) -> None:
        (self._room.clear if self.full else self._room.set)()
        (self._empty.set if self.entries == 0 else self._empty.clear)()

    async def put(self, key: str, topic: str, payload: bytes | Callable[[int], bytes]) -> int:
        seq = await asyncio.to_thread(self.append, key, topic, payload)
        self._update_events()
        self.added.set()
        return seq

    async def delete(self, seqs: Iterable[int]) -> int:
        gone = await asyncio.to_thread(self.remove, list(seqs))
        self._update_events()
        return gone

    async def wait_for_room(self) -> None:
        await self._room.wait()

    async def wait_until_empty(self) -> None:
        await self._empty.wait()

    def describe(self) -> dict[str, int]:
        return {"entries": self.entries, "bytes": self.bytes,
                "max_entries": self.max_entries, "max_bytes": self.max_bytes}


class Backpressure:
    """Admits a probe run only while the outbox has room for its observation.

    ``admit`` waits while the outbox is full, and once paused until it is back under 90 %
    (logging the pause and the resumption once), then reserves one entry; ``release``
    returns it once the observation is stored (or the run did not happen). ``give_up``
    ends the wait for good (``--once`` with the broker gone); ``on_change`` hears about
    pauses and resumptions (status topic).
    """

    POLL = 0.2  # seconds between two looks at a full outbox

    def __init__(self, outbox: Outbox, *, on_change: Callable[[], None] | None = None,
                 give_up: Callable[[], bool] | None = None) -> None:
        self.outbox = outbox
        self.on_change = on_change
        self.give_up = give_up
        self.paused = False

    def _blocked(self) -> bool:
        """Full; once paused, until the outbox is back under its low-water mark."""
        outbox = self.outbox
        if not self.paused:
            return outbox.full
        low = outbox.max_entries - max(1, outbox.max_entries // 10)
        return outbox.entries + outbox.reserved > low or outbox.bytes > 0.9 * outbox.max_bytes

    async def admit(self, stopping: asyncio.Event) -> bool:
        outbox = self.outbox
        while self._blocked() and not stopping.is_set():
            if self.give_up is not None and self.give_up():
                return False
            if not self.paused:
                self._set_paused(True)
                log.warning("outbox full (%d entries + %d reserved, %d bytes; limits %d / %d): "
                            "auditing paused until the broker takes them", outbox.entries,
                            outbox.reserved, outbox.bytes, outbox.max_entries, outbox.max_bytes)
            stop = asyncio.ensure_future(stopping.wait())
            try:
                await asyncio.wait({stop}, timeout=self.POLL)
            finally:
                stop.cancel()
        if stopping.is_set():
            return False
        if self.paused:
            self._set_paused(False)
            log.warning("outbox has room again (%d entries): auditing resumes", outbox.entries)
        outbox.reserve()
        return True

    def release(self) -> None:
        self.outbox.release()

    def _set_paused(self, paused: bool) -> None:
        self.paused = paused
        if self.on_change:
            self.on_change()
