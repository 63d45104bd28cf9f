"""Shared fixtures: real services (Mosquitto, PostgreSQL), free ports, shared/ fixtures.

A test that needs a service skips with a clear reason when it is absent, except
under ``CI=true``, where a missing service is a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("OTAUDIT_SHARED", REPO.parent / "shared"))
MOSQUITTO_HOST, MOSQUITTO_PORT = "127.0.0.1", 1883
POSTGRES_ADMIN_URL = os.environ.get(
    "OTAUDIT_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def missing_service(reason: str) -> None:
    """Skip (developer machine) or fail (CI) for a missing service or tool."""
    if IN_CI:
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def shared_dir() -> Path:
    """The read-only ../shared folder (real fixtures that we may not copy)."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent: these real fixtures are not redistributable")
    return SHARED


@pytest.fixture(scope="session")
def mosquitto_url() -> str:
    """The machine's Mosquitto on 127.0.0.1:1883."""
    if not port_open(MOSQUITTO_HOST, MOSQUITTO_PORT):
        missing_service(f"no MQTT broker on {MOSQUITTO_HOST}:{MOSQUITTO_PORT} (start mosquitto)")
    return f"mqtt://{MOSQUITTO_HOST}:{MOSQUITTO_PORT}"


class MosquittoProcess:
    """A private Mosquitto on a free loopback port, for tests that stop the broker."""

    def __init__(self, workdir: Path, extra_config: str = "") -> None:
        self.port = free_tcp_port()
        self.workdir = workdir
        self.config = workdir / f"mosquitto-{self.port}.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {workdir}/\nmax_queued_messages 100000\n"
            f"log_dest file {workdir}/mosquitto-{self.port}.log\n{extra_config}"
        )
        if os.geteuid() == 0 and "user " not in extra_config:
            # as root Mosquitto drops to user mosquitto, which cannot write pytest's tmp dirs
            with self.config.open("a") as fh:
                fh.write("user root\n")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.config)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", self.port, 0.2):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto did not start on port {self.port}")
            time.sleep(0.05)

    def stop(self, kill: bool = False) -> None:
        if self.proc and self.proc.poll() is None:
            (self.proc.kill if kill else self.proc.terminate)()
            self.proc.wait(10)
        self.proc = None


@pytest.fixture
def mosquitto_factory(tmp_path: Path) -> Iterator[type]:
    """Start private Mosquitto instances: ``broker = mosquitto_factory(); broker.start()``."""
    if shutil.which("mosquitto") is None:
        missing_service("the mosquitto binary is not installed")
    started: list[MosquittoProcess] = []

    def make(extra_config: str = "") -> MosquittoProcess:
        broker = MosquittoProcess(tmp_path, extra_config)
        started.append(broker)
        return broker

    yield make  # type: ignore[misc]
    for broker in started:
        broker.stop(kill=True)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    try:
        import sqlalchemy as sa
    except ImportError:  # pragma: no cover
        pytest.skip("SQLAlchemy missing")
    if not port_open("127.0.0.1", 5432):
        missing_service("no PostgreSQL on 127.0.0.1:5432")
    name = f"otaudit_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"
            ), {"n": name})
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


TEST_DATABASE = os.environ.get("OTAUDIT_TEST_DATABASE", "sqlite")


@pytest.fixture
def sqlite_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The default test database: SQLite, or PostgreSQL with OTAUDIT_TEST_DATABASE=postgres
    (`make test-postgres` runs the whole suite that way)."""
    if TEST_DATABASE == "postgres":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path / 'otaudit.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Runs a test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'otaudit.db'}"
    return request.getfixturevalue("postgres_url")


def require_tool(name: str) -> str:
    """Path of a third-party client; skip (or fail under CI) when absent."""
    path = shutil.which(name)
    if path is None:
        missing_service(f"{name} is not installed (.ci/run installs it)")
    return path  # type: ignore[return-value]



@pytest.fixture
def api(database_url: str) -> Iterator[object]:
    """The HTTP API (TestClient) on a database holding two sites with the same asset id and
    a user/token of each role per site (``support.api``; tests/api)."""
    from fastapi.testclient import TestClient

    from otaudit.server.api import create_app

    from support.api import Api, seed

    tokens = seed(database_url)
    app = create_app(database_url)
    with TestClient(app) as client:
        yield Api(client, database_url, tokens)
    app.state.engine.dispose()
