"""Shared by the collector tests (a conftest.py here would shadow tests/conftest.py).

``private_state_dir``: import it into a test module so its outbox lives in tmp_path.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from otaudit.probes.base import ProbeContext, ProbeTarget

from support.fake_probe import FakeProbe


@pytest.fixture(autouse=True)
def broker_acknowledges(monkeypatch: pytest.MonkeyPatch) -> None:
    """Receipts off (``OTAUDIT_RECEIPTS=false``): these tests run the collector without an
    otaudit server, so the broker's PUBACK is what removes an entry. Receipts are tested
    with the real server in test_receipts.py and tests/durability/."""
    monkeypatch.setenv("OTAUDIT_RECEIPTS", "false")


@pytest.fixture(autouse=True)
def private_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "state"
    monkeypatch.setenv("OTAUDIT_STATE_DIR", str(state))
    return state


class TimedProbe(FakeProbe):
    """FakeProbe that also records when each run started and ended, per endpoint."""

    runs: list[tuple[str, float, float]] = []  # (endpoint, start, end), time.monotonic()

    async def collect(self, target: ProbeTarget, ctx: ProbeContext) -> None:
        start = time.monotonic()
        try:
            await super().collect(target, ctx)
        finally:
            TimedProbe.runs.append((target.endpoint, start, time.monotonic()))


def write_inventory(path: Path, site: str, assets: list[dict[str, Any]],
                    schedules: list[dict[str, Any]] | None = None,
                    collector: str | None = None) -> Path:
    doc: dict[str, Any] = {"site": site, "zones": [{"id": "z1", "sl_t": 2}], "assets": assets}
    if schedules:
        doc["schedules"] = schedules
    if collector:
        doc["collector"] = collector
    path.write_text(yaml.safe_dump(doc))
    return path


def fake_asset(name: str, behaviour: str = "ok", host: str = "127.0.0.1", port: int = 9,
               **extra: Any) -> dict[str, Any]:
    return {"id": name, "kind": "plc", "zone": "z1", **extra,
            "endpoints": {"fake": {"host": host, "port": port, "behaviour": behaviour}}}


@pytest.fixture(autouse=True)
def fake_probes(monkeypatch: pytest.MonkeyPatch) -> type[TimedProbe]:
    """Register the scripted probes as protocols ``fake`` and ``fake2`` (import to use)."""
    import otaudit.probes as probes

    monkeypatch.setitem(probes.REGISTRY, "fake", "collector_support:TimedProbe")
    monkeypatch.setitem(probes.REGISTRY, "fake2", "collector_support:TimedProbe")
    TimedProbe.runs.clear()
    FakeProbe.active.clear()
    FakeProbe.max_active.clear()
    return TimedProbe


def broker_config() -> str:
    """Extra mosquitto config so a private broker can write its persistence file in tmp_path:
    started as root, mosquitto drops to user ``mosquitto``, who cannot write there."""
    return "user root\n" if os.geteuid() == 0 else ""
