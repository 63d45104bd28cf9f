"""Parts of the fault tests: a Modbus plant, collector and server as real processes or
in-process, and the counts (made, stored, duplicated) read from outside.

"Made" is every observation that entered the collector's outbox: the ids the collector logs
at DEBUG ("observation <id> stored in the outbox"), plus the keys found in the outbox file
after a SIGKILL (an entry committed just before the kill may miss its log line).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from otaudit.server.db import ObservationRow, make_engine
from otaudit.simulators import create_simulator

OTAUDIT = str(Path(sys.executable).with_name("otaudit"))
MADE = re.compile(r"observation ([0-9a-f-]{36}) stored in the outbox")
SITE, COLLECTOR = "plant-f", "c1"


@dataclass
class Plant:
    ports: list[int]

    def inventory(self, path: Path, *, schedule: dict[str, Any] | None = None,
                  count: int | None = None) -> Path:
        """An inventory of the plant's PLCs (``count`` of them) on one schedule."""
        schedule = schedule or {"id": "default", "interval": "1h"}
        path.write_text(yaml.safe_dump({
            "site": SITE, "collector": COLLECTOR, "zones": [{"id": "cell", "sl_t": 2}],
            "schedules": [schedule],
            "assets": [{"id": f"plc-{i:02d}", "kind": "plc", "zone": "cell",
                        "endpoints": {"modbus": {"host": "127.0.0.1", "port": port, "unit": 1}}}
                       for i, port in enumerate(self.ports[:count])]}))
        return path


@asynccontextmanager
async def plant(devices: int) -> AsyncIterator[Plant]:
    async with AsyncExitStack() as stack:
        sims = [await stack.enter_async_context(create_simulator("modbus", "schneider-m340"))
                for _ in range(devices)]
        yield Plant([sim.port for sim in sims])


NEVER = {"id": "default", "cron": "0 0 1 1 *"}  # a restart that does not audit again


def collector_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "OTAUDIT_STATE_DIR": str(tmp_path / "state"),
            "OTAUDIT_COLLECTOR_ID": COLLECTOR, "OTAUDIT_RECONNECT_MIN_DELAY": "0.1",
            "OTAUDIT_RECONNECT_MAX_DELAY": "0.5", "OTAUDIT_RECEIPT_TIMEOUT": "1",
            "OTAUDIT_RECEIPT_MAX_DELAY": "2", "OTAUDIT_SCHEDULE_JITTER": "0",
            "OTAUDIT_CONCURRENCY": "2", "OTAUDIT_DEVICE_MIN_INTERVAL": "0",
            "OTAUDIT_HEARTBEAT_INTERVAL": "60", "OTAUDIT_INVENTORY_POLL_INTERVAL": "0",
            "OTAUDIT_RETRIES": "0", **extra}


class Process:
    """A real ``otaudit`` process with its output in a log file."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str]) -> None:
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen([OTAUDIT, *args], env=env, stdout=out,
                                         stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()
            return -9

    def alive(self) -> bool:
        return self.proc.poll() is None


def collector_process(tmp_path: Path, inventory: Path, broker: str, **env: str) -> Process:
    return Process(["-v", "collector", "run", "-i", str(inventory), "--broker", broker],
                   tmp_path / "collector.log", collector_env(tmp_path, **env))


def server_process(tmp_path: Path, broker: str, database_url: str, client_id: str,
                   name: str = "server", **env: str) -> Process:
    environment = {**os.environ, "OTAUDIT_BROKER_URL": broker,
                   "OTAUDIT_DATABASE_URL": database_url, "OTAUDIT_SERVER_CLIENT_ID": client_id,
                   **env}
    return Process(["server", "run"], tmp_path / f"{name}.log", environment)


def made_in(text: str) -> set[str]:
    return set(MADE.findall(text))


class MadeLog(logging.Handler):
    """Collects the ids an in-process collector stored in its outbox."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.ids: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        self.ids |= made_in(record.getMessage())


@asynccontextmanager
async def recording_made() -> AsyncIterator[MadeLog]:
    handler = MadeLog()
    logger = logging.getLogger("otaudit.collector.publisher")
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def outbox_file(tmp_path: Path) -> Path:
    return tmp_path / "state" / f"outbox-{COLLECTOR}.db"


def outbox_keys(path: Path) -> set[str]:
    if not path.exists():
        return set()
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {row[0] for row in db.execute("SELECT key FROM outbox")}
    finally:
        db.close()


def outbox_count(path: Path) -> int:
    return len(outbox_keys(path))


@dataclass
class Counts:
    """What the database holds for the fault test's site."""

    made: set[str]
    rows: list[str] = field(default_factory=list)

    @property
    def stored(self) -> int:
        return len(set(self.rows))

    @property
    def duplicated(self) -> int:
        return len(self.rows) - len(set(self.rows))

    @property
    def lost(self) -> set[str]:
        return self.made - set(self.rows)

    @property
    def foreign(self) -> set[str]:
        return set(self.rows) - self.made

    def line(self, name: str, **extra: object) -> str:
        more = "".join(f", {k} {v}" for k, v in extra.items())
        return (f"\n{name}: made {len(self.made)}, stored {self.stored}, duplicated "
                f"{self.duplicated}, lost {len(self.lost)}{more}")


def stored_rows(database_url: str) -> list[str]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return list(conn.scalars(sa.select(ObservationRow.observation_id)
                                     .where(ObservationRow.site == SITE)))
    except sa.exc.OperationalError:  # not created yet
        return []
    finally:
        engine.dispose()


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str,
                     *alive: Process | asyncio.Task) -> None:  # type: ignore[type-arg]
    """Poll ``predicate``; fail at once when a process or task that must live has ended."""
    deadline = time.monotonic() + timeout
    while not predicate():
        for item in alive:
            if isinstance(item, Process) and not item.alive():
                raise AssertionError(f"process ended (rc {item.proc.returncode}) while "
                                     f"waiting for {what}:\n{item.text()[-3000:]}")
            if isinstance(item, asyncio.Task) and item.done():
                raise AssertionError(f"{item.get_name()} ended while waiting for {what}: "
                                     f"{item.exception() if not item.cancelled() else '-'}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.05)
