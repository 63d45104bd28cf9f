"""Outbox states and integrity without a broker: queued / sent awaiting receipt / receipted,
ages, the quarantine, files from before receipts, ``collector status``."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from pathlib import Path

import pytest
from collector_support import broker_acknowledges, private_state_dir  # noqa: F401
from typer.testing import CliRunner

from otaudit.cli.main import app
from otaudit.collector.outbox import Outbox, digest_of, read_states
from otaudit.throttle import ThrottledLog

OLD_SCHEMA = """
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at REAL NOT NULL
)
"""


def old_outbox(path: Path, entries: int) -> None:
    """An outbox file as the collector wrote it before receipts existed."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(OLD_SCHEMA)
    db.execute("INSERT INTO sqlite_sequence(name, seq) VALUES('outbox', 1700000000000000)")
    for i in range(entries):
        db.execute("INSERT INTO outbox(key, topic, payload, created_at) VALUES (?, ?, ?, ?)",
                   (f"k{i}", f"t/{i}", json.dumps({"i": i}).encode(), 1_700_000_000.0 + i))
    db.commit()
    db.close()


def test_a_file_from_before_receipts_is_upgraded_and_its_entries_stay_queued(
        tmp_path: Path) -> None:
    old_outbox(tmp_path / "full.db", 3)
    box = Outbox(tmp_path / "full.db", max_entries=10, max_bytes=10**6)
    entries = box.fresh()
    assert [e.key for e in entries] == ["k0", "k1", "k2"]
    assert all(e.digest == digest_of(e.payload) for e in entries)
    states = box.states()
    assert states["queued"]["count"] == 3 and states["sent"]["count"] == 0
    assert box.append("k3", "t/3", b"{}") > 1700000000000002  # above the old counter
    box.close()
    old_outbox(tmp_path / "empty.db", 0)
    Outbox(tmp_path / "empty.db", max_entries=10, max_bytes=10**6).close()
    db = sqlite3.connect(tmp_path / "empty.db")  # an empty one can give pages back now
    assert db.execute("PRAGMA auto_vacuum").fetchone() == (2,)
    db.close()


def test_states_count_entries_and_age_the_oldest_per_state(tmp_path: Path) -> None:
    now = [1_800_000_000.0]
    box = Outbox(tmp_path / "o.db", max_entries=10, max_bytes=10**6, clock=lambda: now[0])
    first = box.append("a", "t", b"1")
    now[0] += 4
    box.append("b", "t", b"2")
    box.append("c", "t", b"3")
    now[0] += 6
    box.mark_sent([(first, now[0] + 30)])
    states = box.states()
    assert states["queued"] == {"count": 2, "oldest_age": 6.0}
    assert states["sent"] == {"count": 1, "oldest_age": 10.0}
    assert box.next_due() == now[0] + 30
    assert box.due(now[0] + 29.999) == [] and [e.key for e in box.due(now[0] + 30)] == ["a"]
    assert [e.key for e in box.fresh()] == ["b", "c"]  # "a" is not fresh any more
    assert box.make_due(now[0]) == 1 and box.next_due() == now[0]
    box.settle(["a", "b"])
    states = box.states()
    assert (states["queued"]["count"], states["sent"]["count"], states["receipted"]) == (1, 0, 2)
    assert box.entries == 1 and box.bytes == 1
    box.close()


def test_a_damaged_payload_is_quarantined_never_published(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    box = Outbox(tmp_path / "o.db", max_entries=10, max_bytes=10**6)
    for key in ("a", "b", "c"):
        box.append(key, f"t/{key}", json.dumps({"key": key}).encode())
    box._db.execute("UPDATE outbox SET payload = ? WHERE key = 'b'", (b'{"key": "x"}',))
    caplog.set_level(logging.ERROR, logger="otaudit.collector")
    assert [e.key for e in box.fresh()] == ["a", "c"]
    [item] = box.quarantined()
    assert item["key"] == "b" and "sha256" in item["reason"]
    assert box.entries == 2 and box.states()["corrupt"] == 1
    assert any("outbox entry b" in r.getMessage() and "checksum mismatch" in r.getMessage()
               for r in caplog.records)
    box.close()


def test_collector_status_reads_the_file_with_or_without_a_daemon(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    box = Outbox(state / "outbox-c7.db", max_entries=10, max_bytes=10**6)
    box.append("queued-one", "t/1", b"{}")
    seq = box.append("sent-one", "t/2", b"[]")
    box.mark_sent([(seq, 2e9)])
    box.settle([], [(digest_of(b"[]"), "unsigned: signatures are required")])
    box.append("sent-two", "t/3", b"{ }")
    runner = CliRunner()
    shown = runner.invoke(app, ["collector", "status", "--collector-id", "c7",
                                "--state-dir", str(state)])  # the outbox is open meanwhile
    assert shown.exit_code == 0, shown.output
    assert f"in use by collector process {os.getpid()}" in shown.output
    assert "queued                         2" in shown.output
    assert "rejected (total)               1" in shown.output
    assert "sent-one  t/2  unsigned: signatures are required" in shown.output
    data = json.loads(runner.invoke(app, ["collector", "status", "--collector-id", "c7",
                                          "--state-dir", str(state), "--json"]).output)
    assert data["queued"]["count"] == 2 and data["quarantined"] == 1
    assert set(data) == {*read_states(state / "outbox-c7.db"), "path", "quarantine", "in_use_by"}
    assert data["sent"]["count"] == 0 and data["entries"] == 2
    box.close()
    after = runner.invoke(app, ["collector", "status", "--collector-id", "c7", "--state-dir",
                                str(state)])
    assert "(no collector running)" in after.output
    missing = runner.invoke(app, ["collector", "status", "--collector-id", "nobody",
                                  "--state-dir", str(state)])
    assert missing.exit_code == 3 and "no outbox at" in missing.output


def test_throttled_log_says_how_many_it_held_back(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    throttled = ThrottledLog(logging.getLogger("otaudit.test"), 60, clock=lambda: now[0])
    caplog.set_level(logging.WARNING, logger="otaudit.test")
    assert throttled.warning("x", "refused %s", 1)
    for i in range(5):
        now[0] += 10
        assert not throttled.warning("x", "refused %s", i)
    assert throttled.warning("y", "other")  # each kind on its own
    now[0] += 10.0  # 60 s after the first: the next one is logged with the count
    assert throttled.warning("x", "refused %s", 9)
    assert throttled.counts == {"x": 7, "y": 1}
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["refused 1", "other", "refused 9 (5 more like this in the last 60 s)"]


def damage_page(path: Path, marker: bytes, *, avoid: bytes) -> None:
    """Destroy the B-tree header of the page holding ``marker`` (not a page with ``avoid``)."""
    data = bytearray(path.read_bytes())
    at = -1
    while (at := data.find(marker, at + 1)) >= 0:
        page = at // 4096 * 4096
        if avoid not in data[page:page + 4096]:
            data[page:page + 16] = b"\xff" * 16
            path.write_bytes(bytes(data))
            return
    raise AssertionError(f"no page with {marker!r} without {avoid!r}")


@pytest.mark.parametrize("where", ["table", "key index"])
def test_a_damaged_file_is_moved_aside_and_what_can_be_read_is_kept(
        tmp_path: Path, where: str, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "o.db"
    box = Outbox(path, max_entries=100, max_bytes=10**7)
    for i in range(8):  # one entry per page: 3 KiB payloads
        box.append(f"key-{i:02d}", f"t/{i}", json.dumps({"mark": f"ROW{i:02d}",
                                                          "pad": "x" * 3000}).encode())
    box.close()
    if where == "table":
        damage_page(path, b"ROW05", avoid=b"no such bytes")
    else:  # the keys are in their rows too: the page of the unique index has no row marker
        damage_page(path, b"key-05", avoid=b"ROW05")
    caplog.set_level(logging.ERROR, logger="otaudit.collector")
    box = Outbox(path, max_entries=100, max_bytes=10**7)
    kept = [e.key for e in box.fresh()]
    expected = [f"key-{i:02d}" for i in range(8) if where != "table" or i != 5]
    assert kept == expected and box.entries == len(expected)
    assert [q["key"] for q in box.quarantined()] == ([] if where != "table" else ["key-05"])
    assert len([p for p in tmp_path.glob("o.db.corrupt-*") if p.name[-4:] not in ("-wal",
                                                                                  "-shm")]) == 1
    assert box.recovered and "is damaged" in box.recovered[0]
    assert "unknown number" not in box.recovered[0]
    assert box.append("new", "t/new", b"{}") > 0  # a sound file again
    assert box._db.execute("SELECT count(*) FROM sqlite_sequence WHERE name = 'outbox'"
                           ).fetchone() == (1,)
    box.close()
    assert any("is damaged" in r.getMessage() for r in caplog.records)
