"""The durable outbox: every observation is written here before it is published.

An SQLite file in the collector's state directory (WAL journal, ``synchronous=FULL``:
``put`` returns only once the entry is on disk; state changes and deletions do not wait for
the disk, since a power cut undoing one only means a re-publish). An entry is **queued**
until the broker acknowledged its publish (PUBACK with a success code), then **sent,
awaiting receipt**; it leaves the outbox only when the server's receipt
(``otaudit.receipt``) says it is committed (**receipted**), or is moved to the quarantine
table when the server rejected it for good.
Entries whose receipt does not come are published again once they are due (``due_at``: the
forwarder's backoff). With receipts off (``Settings.receipts``) the PUBACK removes the entry.

Bounds: entries and bytes; when the outbox is full no probe run starts until it drains
(``Backpressure``), and no entry is ever dropped. A probe run reserves the entry of its
observation before it starts, so the entry bound holds exactly; the byte bound can be
exceeded by the observations of the runs in flight.

The disk may fill up before the bounds are reached: a write that fails with SQLITE_FULL
leaves nothing half-written (one transaction), ``put`` raises ``OutboxDiskFull`` and
``disk_full`` is set (``Backpressure`` pauses auditing). A reserve file of
``reserve_bytes`` next to the outbox is then deleted, so that receipted entries can still
be removed (SQLite needs disk space to delete); the reserve is recreated before the next
entry is written, and writing resumes only once it could be.

Integrity: each entry keeps the sha256 of its payload; an entry whose payload no longer
matches is quarantined with a message, never published. A file SQLite finds damaged (at
open, ``quick_check``, or later) is moved aside (``<name>.corrupt-<time>``) and every entry
that can still be read is copied into a fresh file; the unreadable ones are listed in the
quarantine table by key.

``seq`` numbers never go backwards for a collector, not even when the state directory is
lost or an older copy of the outbox is restored: a new seq is the larger of the last one
plus one and the current time in microseconds (see ``next_seq``). The seq of an entry is the
one a signed envelope carries (``otaudit.signing``), so a re-sent entry is byte-identical to
the first send. One process at a time may use an outbox (a lock file next to it).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from otaudit.settings import Settings
from otaudit.throttle import ThrottledLog

log = logging.getLogger(__name__)
T = TypeVar("T")

QUEUED, SENT = 0, 1
STATE_NAMES = {QUEUED: "queued", SENT: "sent"}
RESERVE_BYTES = 1 << 20
WAL_PAGES = 64  # checkpoint the WAL at this many pages (SQLite's default: 1000)
RECHECK_INTERVAL = 0.25  # seconds between two looks for room on a full disk
TABLES = [
    """CREATE TABLE IF NOT EXISTS outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL UNIQUE,
        topic TEXT NOT NULL,
        payload BLOB NOT NULL,
        created_at REAL NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS quarantine (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT,
        topic TEXT,
        payload BLOB,
        reason TEXT NOT NULL,
        at REAL NOT NULL
    )""",
    "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
]
COLUMNS = {  # added to outbox files written before receipts existed
    "digest": "TEXT",  # sha256 hex of payload
    "state": "INTEGER NOT NULL DEFAULT 0",  # QUEUED or SENT
    "attempts": "INTEGER NOT NULL DEFAULT 0",  # publishes the broker acknowledged or refused
    "sent_at": "REAL",  # first successful PUBACK
    "due_at": "REAL",  # publish (again) from then on; NULL: never published
}
INDEXES = [
    "CREATE INDEX IF NOT EXISTS outbox_due ON outbox(due_at)",
    "CREATE INDEX IF NOT EXISTS outbox_state ON outbox(state, created_at)",
    "CREATE INDEX IF NOT EXISTS outbox_digest ON outbox(digest)",
]
ENTRY_COLUMNS = "seq, key, topic, payload, digest, attempts"
CORRUPT_CODES = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB
SQLITE_FULL = 13


class OutboxError(Exception):
    """The outbox cannot be opened (in use by another process, unwritable)."""


class OutboxDiskFull(OutboxError):
    """The disk of the outbox is full: the entry was not written (nothing half-written)."""


@dataclass(frozen=True)
class Entry:
    seq: int
    key: str
    topic: str
    payload: bytes
    digest: str | None = None
    attempts: int = 0


@dataclass
class Settled:
    """What a receipt changed: entries that left the outbox (without their payloads),
    entries quarantined."""

    committed: list[Entry] = field(default_factory=list)
    rejected: list[tuple[Entry, str]] = field(default_factory=list)


def default_state_dir() -> Path:
    """``$STATE_DIRECTORY`` (systemd ``StateDirectory=``), else the XDG state home."""
    if os.environ.get("STATE_DIRECTORY"):
        return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "otaudit"


def outbox_path(settings: Settings, collector: str) -> Path:
    return (settings.state_dir or default_state_dir()) / f"outbox-{collector}.db"


def digest_of(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def next_seq(last: int, now_us: int) -> int:
    """Never backwards: above the last seq of this file, and above every seq issued before
    now by any copy of it (a seq is at most the time it was issued, in microseconds)."""
    return max(last + 1, now_us)


def _code(exc: sqlite3.Error) -> int:
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF


def is_full(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.Error) and _code(exc) == SQLITE_FULL


def is_corrupt(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.DatabaseError) and _code(exc) in CORRUPT_CODES


class Outbox:
    """A bounded, durable queue of MQTT messages (thread-safe; async helpers for the loop)."""

    def __init__(self, path: Path, *, max_entries: int, max_bytes: int,
                 lock_timeout: float = 0.0, reserve_bytes: int = RESERVE_BYTES,
                 max_pages: int | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        """``max_pages``: SQLite's ``max_page_count``, a file size limit that fails writes
        like a full disk does (a test seam where no small file system can be mounted)."""
        self.path = Path(path)
        self.max_pages = max_pages
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.reserve_bytes = reserve_bytes
        # the WAL stays under half the reserve: giving the reserve up always lets a delete
        # and a checkpoint through on a full disk
        self.wal_pages = max(4, min(WAL_PAGES, reserve_bytes // 8192)) if reserve_bytes \
            else WAL_PAGES
        self.reserve_path = self.path.with_suffix(".reserve")
        self.clock = clock
        self.disk_full = False
        self.disk_full_events = 0  # times the disk filled up
        self._rechecked_at = 0.0
        self._throttled = ThrottledLog(log, interval=300.0)
        self.recovered: list[str] = []  # what salvaging a damaged file said (status, tests)
        self._lock = threading.RLock()
        self._executor: ThreadPoolExecutor | None = None  # see call()
        self._lockfile = self._acquire(lock_timeout)
        try:
            self._db = self._open()
        except (sqlite3.Error, OSError) as exc:
            self._release()
            raise OutboxError(f"outbox {self.path}: {exc}") from None
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

    # -- opening, schema, damaged files -------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        if not self.path.exists():  # observations describe the plant: owner only
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        try:
            db = _connect(self.path, self.wal_pages)
            problem = _check(db)
        except sqlite3.DatabaseError as exc:
            if not is_corrupt(exc):
                raise
            problem = str(exc)
            db = None
        if problem is not None:
            if db is not None:
                db.close()
            self._salvage(problem)
            db = _connect(self.path, self.wal_pages)
        _prepare(db)
        if self.max_pages:
            db.execute(f"PRAGMA max_page_count = {int(self.max_pages)}")
        row = db.execute("SELECT seq FROM sqlite_sequence WHERE name='outbox'").fetchone()
        self._last_seq = int(row[0]) if row else 0
        count, size = db.execute(
            "SELECT count(*), coalesce(sum(length(payload)), 0) FROM outbox").fetchone()
        self.entries, self.bytes = int(count), int(size)
        self._ensure_reserve()
        return db

    def _salvage(self, problem: str) -> None:
        """Move a damaged file aside and copy what can still be read into a fresh one."""
        damaged = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}"
                                      f"-{os.getpid()}")
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.replace(f"{self.path}{suffix}", f"{damaged}{suffix}")
        rows, lost, extra = _read_damaged(damaged)
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        db = _connect(self.path)
        try:
            _prepare(db)
            db.execute("BEGIN IMMEDIATE")
            for row in rows:
                names = ", ".join(row)
                db.execute(f"INSERT INTO outbox({names}) VALUES ({', '.join('?' * len(row))})",
                           list(row.values()))
            now = self.clock()
            for item in extra["quarantine"]:
                db.execute("INSERT INTO quarantine(key, topic, payload, reason, at) "
                           "VALUES (?, ?, ?, ?, ?)", item)
            for key, reason in lost:
                db.execute("INSERT INTO quarantine(key, topic, payload, reason, at) "
                           "VALUES (?, NULL, NULL, ?, ?)", (key, reason, now))
            for name, value in extra["counters"]:
                db.execute("INSERT OR REPLACE INTO counters(name, value) VALUES (?, ?)",
                           (name, value))
            _bump(db, "corrupt", len(lost))
            last = max([extra["last_seq"], *(int(r["seq"]) for r in rows)])
            if last and not db.execute("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE "
                                       "name = 'outbox'", (last,)).rowcount:
                db.execute("INSERT INTO sqlite_sequence(name, seq) VALUES('outbox', ?)", (last,))
            db.execute("COMMIT")
        finally:
            db.close()
        unknown = " (and an unknown number of entries whose keys were unreadable)" if (
            extra["incomplete"]) else ""
        message = (f"outbox {self.path} is damaged ({problem}): {len(rows)} entries saved, "
                   f"{len(lost)} unreadable entries quarantined{unknown}; the damaged file is "
                   f"kept as {damaged}")
        self.recovered.append(message)
        log.error("%s", message)
        for key, _ in lost[:20]:
            log.error("outbox entry %s could not be read from the damaged file: quarantined "
                      "by key, its observation is lost", key)

    def recover(self, problem: str) -> None:
        """SQLite found the open file damaged: salvage it and carry on with the copy."""
        with self._lock:
            self._db.close()
            self._salvage(problem)
            self._db = _connect(self.path, self.wal_pages)
            _prepare(self._db)
            count, size = self._db.execute(
                "SELECT count(*), coalesce(sum(length(payload)), 0) FROM outbox").fetchone()
            self.entries, self.bytes = int(count), int(size)

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
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        with self._lock:
            if self._lockfile >= 0:
                self._db.close()
                self._release()

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the outbox's own thread. One is enough (every call holds the
        outbox's lock) and asyncio's default pool stays free for address lookups: with the
        default pool the SQLite work spread over up to six threads, each with its own
        malloc arena and page cache (about 3 MiB more resident in a collector)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # -- disk space ---------------------------------------------------------------------------

    def _ensure_reserve(self) -> bool:
        """Create the reserve file if it is missing; False when the disk has no room for it."""
        if not self.reserve_bytes:
            return True
        with contextlib.suppress(OSError):
            if self.reserve_path.stat().st_size >= self.reserve_bytes:
                return True
        partial = self.reserve_path.with_suffix(".reserve-new")
        try:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                block = bytes(min(self.reserve_bytes, 1 << 16))
                written = 0
                while written < self.reserve_bytes:
                    written += os.write(fd, block[: self.reserve_bytes - written])
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(partial, self.reserve_path)
            return True
        except OSError as exc:
            with contextlib.suppress(OSError):
                partial.unlink()
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                return False
            raise

    def _out_of_space(self) -> None:
        """A write failed with SQLITE_FULL: give up the reserve so deletions can proceed."""
        if not self.disk_full:
            self.disk_full_events += 1
            self._throttled.log(logging.ERROR, "disk full", "outbox %s: the disk is full; "
                              "nothing was half-written. Auditing pauses (observations of the "
                              "probe runs in flight are held in memory) until receipted "
                              "entries free space", self.path)
        self.disk_full = True
        with contextlib.suppress(FileNotFoundError):
            self.reserve_path.unlink()

    def _write(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        """One write transaction that changes or removes entries (never adds one).

        It commits without waiting for the disk (``synchronous=NORMAL``; a new entry waits,
        see ``append``): a power cut may undo it, which only makes entries be published
        again, and ingest absorbs that. On SQLITE_FULL the reserve is released and it is
        tried once more (deleting needs a little space too)."""
        db = self._db
        db.execute("PRAGMA synchronous=NORMAL")
        try:
            for attempt in (1, 2):
                try:
                    db.execute("BEGIN IMMEDIATE")
                    result = work(db)
                    db.execute("COMMIT")
                    return result
                except BaseException as exc:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    if attempt == 1 and is_full(exc):
                        self._out_of_space()
                        continue
                    raise
            raise AssertionError("unreachable")
        finally:
            db.execute("PRAGMA synchronous=FULL")

    def recheck_disk(self) -> bool:
        """After a full disk: is there room again (for the reserve, and so for entries)?
        Clears ``disk_full`` when there is."""
        with self._lock:
            if not self.disk_full:
                return True
            if time.monotonic() - self._rechecked_at < RECHECK_INTERVAL:
                return False
            self._rechecked_at = time.monotonic()
            self._checkpoint()  # the WAL and free pages may hold the room the reserve needs
            if not self._ensure_reserve():
                return False
            self.disk_full = False
            log.info("outbox %s: the disk has room again", self.path)
            return True

    def _after_delete(self) -> None:
        """While the disk is full, give the WAL's space back to the file system right away."""
        if self.disk_full:
            self._checkpoint()

    def _checkpoint(self) -> None:
        """Free pages and the WAL back to the file system (a full disk)."""
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("PRAGMA incremental_vacuum").fetchall()
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    # -- synchronous core (any thread) --------------------------------------------------------

    @property
    def full(self) -> bool:
        return (self.entries + self.reserved >= self.max_entries
                or self.bytes >= self.max_bytes)

    def append(self, key: str, topic: str, payload: bytes | Callable[[int], bytes]) -> int:
        """Store one message durably; ``payload`` may be built from the seq (signing).

        Idempotent on ``key`` (the observation id): storing it again returns its seq.
        Raises ``OutboxDiskFull`` when the disk has no room (nothing is written then).
        """
        with self._lock:
            if not self.recheck_disk():
                raise OutboxDiskFull(f"outbox {self.path}: the disk is full")
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                row = db.execute("SELECT seq FROM outbox WHERE key = ?", (key,)).fetchone()
                if row:
                    db.execute("ROLLBACK")
                    return int(row[0])
                seq = next_seq(self._last_seq, int(self.clock() * 1_000_000))
                data = payload(seq) if callable(payload) else payload
                db.execute("INSERT INTO outbox(seq, key, topic, payload, created_at, digest) "
                           "VALUES (?, ?, ?, ?, ?, ?)",
                           (seq, key, topic, data, self.clock(), digest_of(data)))
                db.execute("COMMIT")
            except BaseException as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                if is_full(exc):
                    self._out_of_space()
                    raise OutboxDiskFull(f"outbox {self.path}: the disk is full") from None
                raise
            self._last_seq = seq
            self.entries += 1
            self.bytes += len(data)
            return seq

    def peek(self, after: int = 0, limit: int = 100) -> list[Entry]:
        """The oldest entries with a seq above ``after``, in order (any state)."""
        with self._lock:
            rows = self._db.execute(f"SELECT {ENTRY_COLUMNS} FROM outbox WHERE seq > ? "
                                    "ORDER BY seq LIMIT ?", (after, limit)).fetchall()
        return [_entry(row) for row in rows]

    def fresh(self, after: int = 0, limit: int = 100) -> list[Entry]:
        """Entries never published (acknowledged or refused) with a seq above ``after``, in
        seq order; damaged ones are quarantined instead."""
        return self._checked("WHERE due_at IS NULL AND seq > ? ORDER BY seq LIMIT ?",
                             (after, limit))

    def due(self, now: float, limit: int = 100, exclude: Iterable[int] = ()) -> list[Entry]:
        """Entries due for another publish (no receipt in time, or refused), oldest due first,
        without those in ``exclude`` (in flight)."""
        skip = set(exclude)
        entries = self._checked("WHERE due_at <= ? ORDER BY due_at, seq LIMIT ?",
                                (now, limit + len(skip)))
        return [e for e in entries if e.seq not in skip][:limit]

    def _checked(self, where: str, params: tuple[Any, ...]) -> list[Entry]:
        with self._lock:
            try:
                rows = self._db.execute(f"SELECT {ENTRY_COLUMNS} FROM outbox {where}",
                                        params).fetchall()
            except sqlite3.DatabaseError as exc:
                if not is_corrupt(exc):
                    raise
                self.recover(str(exc))
                rows = self._db.execute(f"SELECT {ENTRY_COLUMNS} FROM outbox {where}",
                                        params).fetchall()
            entries = [_entry(row) for row in rows]
            damaged = [e for e in entries if e.digest and digest_of(e.payload) != e.digest]
            for entry in damaged:
                reason = "damaged in the outbox: the payload no longer matches its sha256"
                log.error("outbox entry %s (seq %d, %s) is damaged (payload checksum mismatch): "
                          "quarantined, not published", entry.key, entry.seq, entry.topic)
                self._quarantine([(entry, reason)], counter="corrupt")
        return [e for e in entries if e not in damaged]

    def next_due(self) -> float | None:
        """When the earliest entry becomes due again (None: nothing waits for a receipt)."""
        with self._lock:
            row = self._db.execute("SELECT min(due_at) FROM outbox").fetchone()
        return None if row[0] is None else float(row[0])

    def mark_sent(self, due: Iterable[tuple[int, float]]) -> None:
        """The broker acknowledged these publishes: sent, awaiting receipt, due again then."""
        items = list(due)
        if items:
            now = self.clock()
            with self._lock:
                self._write(lambda db: db.executemany(
                    "UPDATE outbox SET state = 1, attempts = attempts + 1, "
                    "sent_at = coalesce(sent_at, ?), due_at = ? WHERE seq = ?",
                    [(now, at, seq) for seq, at in items]))

    def make_due(self, now: float) -> int:
        """Every entry awaiting a receipt is due now; returns how many."""
        with self._lock:
            return int(self._write(lambda db: db.execute(
                "UPDATE outbox SET due_at = ? WHERE state = 1 AND due_at > ?", (now, now)
            ).rowcount))

    def mark_refused(self, due: Iterable[tuple[int, float]]) -> None:
        """The broker refused these publishes (PUBACK reason >= 0x80): still queued."""
        items = list(due)
        if items:
            with self._lock:
                self._write(lambda db: db.executemany(
                    "UPDATE outbox SET attempts = attempts + 1, due_at = ? WHERE seq = ?",
                    [(at, seq) for seq, at in items]))

    def remove(self, seqs: Iterable[int]) -> int:
        """Delete entries (one transaction); returns how many were deleted."""
        seqs = list(seqs)
        if not seqs:
            return 0
        with self._lock:
            gone, size = self._write(lambda db: _delete(db, "seq", seqs))
            self.entries -= gone
            self.bytes -= size
            self._after_delete()
            return gone

    def settle(self, committed: Iterable[str], rejected: Iterable[tuple[str, str]] = ()
               ) -> Settled:
        """Apply a receipt: entries with a ``committed`` key leave the outbox (receipted);
        entries whose payload digest is a ``rejected`` one move to the quarantine."""
        keys, refused = list(dict.fromkeys(committed)), list(rejected)
        settled = Settled()
        with self._lock:
            if keys:
                found = self._select("key", keys, payload=False)
                if found:
                    def receipted(db: sqlite3.Connection) -> tuple[int, int]:
                        _bump(db, "receipted", len(found))
                        return _delete(db, "seq", [e.seq for e in found])

                    gone, size = self._write(receipted)
                    self.entries -= gone
                    self.bytes -= size
                    settled.committed = found
            if refused:
                reasons = dict(refused)
                victims = [(e, reasons[e.digest or ""]) for e in self._select("digest", reasons)]
                if victims:
                    self._quarantine(victims, counter="rejected")
                    settled.rejected = victims
            if settled.committed or settled.rejected:
                self._after_delete()
        return settled

    def _select(self, column: str, values: Iterable[str], payload: bool = True
                ) -> list[Entry]:
        """The entries whose ``column`` is one of ``values`` (``payload=False``: their
        payloads left out, as ``b""``)."""
        columns = ENTRY_COLUMNS if payload else ENTRY_COLUMNS.replace("payload", "x''")
        found: list[Entry] = []
        values = list(values)
        for i in range(0, len(values), 500):
            part = values[i:i + 500]
            found += [_entry(row) for row in self._db.execute(
                f"SELECT {columns} FROM outbox WHERE {column} IN "
                f"({','.join('?' * len(part))})", part)]
        return found

    def _quarantine(self, items: list[tuple[Entry, str]], counter: str) -> None:
        now = self.clock()

        def move(db: sqlite3.Connection) -> tuple[int, int]:
            db.executemany("INSERT INTO quarantine(key, topic, payload, reason, at) "
                           "VALUES (?, ?, ?, ?, ?)",
                           [(e.key, e.topic, e.payload, reason, now) for e, reason in items])
            _bump(db, counter, len(items))
            return _delete(db, "seq", [e.seq for e, _ in items])

        with self._lock:
            gone, size = self._write(move)
            self.entries -= gone
            self.bytes -= size

    def quarantined(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest quarantined items (key, topic, reason, at)."""
        with self._lock:
            rows = self._db.execute("SELECT key, topic, reason, at FROM quarantine "
                                    "ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [{"key": k, "topic": t, "reason": r, "at": a} for k, t, r, a in rows]

    def states(self) -> dict[str, Any]:
        """Per state: how many entries and the age of the oldest; receipted and rejected
        totals; quarantined items now."""
        with self._lock:
            return describe_states(self._db, self.clock())

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
        seq = await self.call(self.append, key, topic, payload)
        self._update_events()
        self.added.set()
        return seq

    async def delete(self, seqs: Iterable[int]) -> int:
        gone = await self.call(self.remove, list(seqs))
        self._update_events()
        return gone

    async def apply_receipt(self, committed: Iterable[str],
                            rejected: Iterable[tuple[str, str]] = ()) -> Settled:
        settled = await self.call(self.settle, list(committed), list(rejected))
        self._update_events()
        return settled

    async def wait_for_room(self) -> None:
        await self._room.wait()

    async def wait_until_empty(self) -> None:
        await self._empty.wait()

    def describe(self) -> dict[str, Any]:
        data: dict[str, Any] = {"entries": self.entries, "bytes": self.bytes,
                                "max_entries": self.max_entries, "max_bytes": self.max_bytes,
                                "disk_full": self.disk_full}
        try:
            data.update(self.states())
        except sqlite3.Error as exc:  # a status must never fail
            data["states_error"] = str(exc)
        return data


# -- helpers -------------------------------------------------------------------------------

# SQLite's page cache per connection, KiB (its default: 2,000): entries are written once,
# read in order and soon deleted, so a small cache costs reads from the OS's page cache.
CACHE_KIB = 256


def _connect(path: Path, wal_pages: int = WAL_PAGES) -> sqlite3.Connection:
    """WAL, synced on commit; the WAL is checkpointed every ``wal_pages`` pages and cut back
    to that size, so that what the outbox takes on disk follows its entries (a full disk
    then frees up as receipts delete them)."""
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute(f"PRAGMA wal_autocheckpoint={wal_pages}")
    db.execute(f"PRAGMA journal_size_limit={wal_pages * 4096}")
    # Zero deleted content only in pages written anyway (Debian's SQLite overwrites every
    # freed page by default: deleting a batch would then need room for all of it)
    db.execute("PRAGMA secure_delete=FAST")
    db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    return db


def _check(db: sqlite3.Connection) -> str | None:
    """None when SQLite finds the file sound, else what it found."""
    rows = [r[0] for r in db.execute("PRAGMA quick_check(5)")]
    return None if rows == ["ok"] else "; ".join(rows)


def _prepare(db: sqlite3.Connection) -> None:
    """Create the tables, add the columns of newer versions, fill missing digests.

    A new file gets ``auto_vacuum=INCREMENTAL`` (an empty older one is converted): on a
    full disk, the pages of deleted entries can then be given back to the file system."""
    db.execute("PRAGMA auto_vacuum=INCREMENTAL")  # takes effect on a new file only
    if db.execute("PRAGMA auto_vacuum").fetchone()[0] != 2 and not _has_rows(db):
        db.execute("VACUUM")
    for statement in TABLES:
        db.execute(statement)
    have = {row[1] for row in db.execute("PRAGMA table_info(outbox)")}
    for name, kind in COLUMNS.items():
        if name not in have:
            db.execute(f"ALTER TABLE outbox ADD COLUMN {name} {kind}")
    for statement in INDEXES:
        db.execute(statement)
    missing = db.execute("SELECT seq, payload FROM outbox WHERE digest IS NULL").fetchall()
    if missing:
        db.executemany("UPDATE outbox SET digest = ? WHERE seq = ?",
                       [(digest_of(bytes(p)), s) for s, p in missing])


def _has_rows(db: sqlite3.Connection) -> bool:
    try:
        return db.execute("SELECT 1 FROM outbox LIMIT 1").fetchone() is not None
    except sqlite3.OperationalError:  # no table yet
        return False


def _entry(row: tuple[Any, ...]) -> Entry:
    seq, key, topic, payload, digest, attempts = row
    return Entry(int(seq), key, topic, bytes(payload), digest, int(attempts or 0))


def _delete(db: sqlite3.Connection, column: str, values: list[Any]) -> tuple[int, int]:
    gone = size = 0
    for i in range(0, len(values), 500):
        part = values[i:i + 500]
        marks = ",".join("?" * len(part))
        count, total = db.execute(f"SELECT count(*), coalesce(sum(length(payload)), 0) FROM "
                                  f"outbox WHERE {column} IN ({marks})", part).fetchone()
        db.execute(f"DELETE FROM outbox WHERE {column} IN ({marks})", part)
        gone, size = gone + int(count), size + int(total)
    return gone, size


def _bump(db: sqlite3.Connection, name: str, by: int) -> None:
    if by:
        db.execute("INSERT INTO counters(name, value) VALUES (?, ?) ON CONFLICT(name) "
                   "DO UPDATE SET value = value + excluded.value", (name, by))


def describe_states(db: sqlite3.Connection, now: float) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for state, name in STATE_NAMES.items():
        count, oldest = db.execute("SELECT count(*), min(created_at) FROM outbox "
                                   "WHERE state = ?", (state,)).fetchone()
        data[name] = {"count": int(count),
                      "oldest_age": None if oldest is None else round(now - oldest, 3)}
    counters = dict(db.execute("SELECT name, value FROM counters").fetchall())
    data["receipted"] = int(counters.get("receipted", 0))
    data["rejected"] = int(counters.get("rejected", 0))
    data["corrupt"] = int(counters.get("corrupt", 0))
    data["quarantined"] = int(db.execute("SELECT count(*) FROM quarantine").fetchone()[0])
    return data


def read_states(path: Path) -> dict[str, Any]:
    """The states of an outbox file, read-only, without taking its lock (``collector
    status``: the daemon may be running)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        have = {row[1] for row in db.execute("PRAGMA table_info(outbox)")}
        if not have:
            raise sqlite3.DatabaseError("no outbox table")
        if "state" not in have:  # a file from before receipts: everything is queued
            count, oldest, size = db.execute("SELECT count(*), min(created_at), "
                                             "coalesce(sum(length(payload)), 0) FROM outbox"
                                             ).fetchone()
            return {"entries": count, "bytes": size, "queued": {
                "count": count, "oldest_age": None if oldest is None else
                round(time.time() - oldest, 3)}, "sent": {"count": 0, "oldest_age": None},
                "receipted": 0, "rejected": 0, "corrupt": 0, "quarantined": 0}
        count, size = db.execute("SELECT count(*), coalesce(sum(length(payload)), 0) "
                                 "FROM outbox").fetchone()
        return {"entries": count, "bytes": size, **describe_states(db, time.time())}
    finally:
        db.close()


def read_quarantine(path: Path, limit: int = 10) -> list[dict[str, Any]]:
    """The newest quarantined items of an outbox file, read-only."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name='quarantine'").fetchone():
            return []
        rows = db.execute("SELECT key, topic, reason, at FROM quarantine ORDER BY id DESC "
                          "LIMIT ?", (limit,)).fetchall()
    finally:
        db.close()
    return [{"key": k, "topic": t, "reason": r, "at": a} for k, t, r, a in rows]


def _read_damaged(path: Path) -> tuple[list[dict[str, Any]], list[tuple[str, str]],
                                        dict[str, Any]]:
    """Every readable outbox row of a damaged file, the keys of the unreadable ones, and
    what else could be read (quarantine, counters, last seq, whether keys are missing)."""
    extra: dict[str, Any] = {"quarantine": [], "counters": [], "last_seq": 0,
                             "incomplete": False}
    rows: dict[int, dict[str, Any]] = {}
    lost: list[tuple[str, str]] = []
    try:
        db = sqlite3.connect(path, isolation_level=None)
    except sqlite3.Error:
        extra["incomplete"] = True
        return [], [], extra
    try:
        for query, target in (("SELECT key, topic, payload, reason, at FROM quarantine",
                               "quarantine"), ("SELECT name, value FROM counters", "counters")):
            with contextlib.suppress(sqlite3.Error):
                extra[target] = db.execute(query).fetchall()
        with contextlib.suppress(sqlite3.Error):
            row = db.execute("SELECT seq FROM sqlite_sequence WHERE name='outbox'").fetchone()
            extra["last_seq"] = int(row[0]) if row else 0
        try:
            keys = db.execute("SELECT key, seq FROM outbox INDEXED BY sqlite_autoindex_outbox_1"
                              ).fetchall()
        except sqlite3.Error:
            keys = None
        if keys is not None:
            for key, seq in keys:
                try:
                    row = _row(db, "WHERE seq = ?", (seq,))
                except sqlite3.Error as exc:
                    lost.append((key, f"unreadable in the damaged outbox file ({exc})"))
                    continue
                if row is not None:
                    rows[int(seq)] = row
        else:  # the key index is damaged: read the table from both ends up to the damage
            for order in ("ASC", "DESC"):
                try:
                    for item in _rows(db, f"ORDER BY seq {order}"):
                        rows[int(item["seq"])] = item
                    break  # the whole table was readable
                except sqlite3.Error:
                    extra["incomplete"] = True
    finally:
        db.close()
    return [rows[s] for s in sorted(rows)], lost, extra


def _row(db: sqlite3.Connection, where: str, params: tuple[Any, ...]) -> dict[str, Any] | None:
    return next(_rows(db, where, params), None)


def _rows(db: sqlite3.Connection, where: str, params: tuple[Any, ...] = ()
          ) -> Iterator[dict[str, Any]]:
    cursor = db.execute(f"SELECT * FROM outbox {where}", params)
    names = [d[0] for d in cursor.description]
    for values in cursor:
        yield dict(zip(names, values, strict=True))


class Backpressure:
    """Admits a probe run only while the outbox has room for its observation.

    ``admit`` waits while the outbox is full (or its disk is), and once paused until it is
    back under 90 % (logging the pause and the resumption once), then reserves one entry;
    ``release`` returns it once the observation is stored (or the run did not happen).
    ``give_up`` ends the wait for good (``--once`` with the broker gone); ``on_change`` hears
    about pauses and resumptions (status topic).
    """

    POLL = 0.2  # seconds between two looks at a full outbox

    def __init__(self, outbox: Outbox, *, on_change: Callable[[], None] | None = None,
                 give_up: Callable[[], bool] | None = None) -> None:
        self.outbox = outbox
        self.on_change = on_change
        self.give_up = give_up
        self.paused = False

    @property
    def reason(self) -> str | None:
        if not self.paused:
            return None
        return "outbox disk full" if self.outbox.disk_full else "outbox full"

    def _blocked(self) -> bool:
        """Full; once paused, until the outbox is back under its low-water mark."""
        outbox = self.outbox
        if outbox.disk_full:
            return True
        if not self.paused:
            return outbox.full
        low = outbox.max_entries - max(1, outbox.max_entries // 10)
        return outbox.entries + outbox.reserved > low or outbox.bytes > 0.9 * outbox.max_bytes

    async def admit(self, stopping: asyncio.Event) -> bool:
        outbox = self.outbox
        while not stopping.is_set():
            if outbox.disk_full:
                await outbox.call(outbox.recheck_disk)
            if not self._blocked():
                break
            if self.give_up is not None and self.give_up():
                return False
            if not self.paused:
                self._set_paused(True)
                if outbox.disk_full:
                    log.warning("outbox disk full (%d entries, %d bytes): auditing paused "
                                "until the server's receipts free space", outbox.entries,
                                outbox.bytes)
                else:
                    log.warning("outbox full (%d entries + %d reserved, %d bytes; limits %d / "
                                "%d): auditing paused until the server's receipts free room",
                                outbox.entries, outbox.reserved, outbox.bytes,
                                outbox.max_entries, outbox.max_bytes)
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
