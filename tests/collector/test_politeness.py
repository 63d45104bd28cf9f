"""The plant-protecting rules of an audit pass: device interval, retries, stop conditions."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from collector_support import (  # noqa: F401 (fixtures)
    TimedProbe,
    fake_asset,
    fake_probes,
    private_state_dir,
    write_inventory,
)

from otaudit.collector.run import AuditControl, audit_assets
from otaudit.collector.targets import load_plan
from otaudit.observation import Observation
from otaudit.settings import Settings


async def audit(tmp_path: Path, assets: list[dict], control: AuditControl | None = None,
                **settings: object) -> tuple[list[Observation], object]:
    _, plans = load_plan(write_inventory(tmp_path / "inv.yaml", "s", assets))
    got: list[Observation] = []

    async def sink(obs: Observation) -> None:
        got.append(obs)

    summary = await audit_assets(plans, sink, settings=Settings(**settings), site="s",
                                 collector="c", control=control)
    return got, summary


async def test_minimum_interval_between_two_runs_on_one_device(
        tmp_path: Path) -> None:
    # two assets behind one endpoint (units of a gateway) and one elsewhere
    assets = [fake_asset("u1", port=502), fake_asset("u2", port=502),
              fake_asset("other", port=503)]
    got, _ = await audit(tmp_path, assets, device_min_interval=0.3, concurrency=8)
    assert len(got) == 3
    runs = sorted((s, e) for ep, s, e in TimedProbe.runs if ep.endswith(":502"))
    assert runs[1][0] - runs[0][1] >= 0.29  # one after the other, 0.3 s apart
    other = next(s for ep, s, _ in TimedProbe.runs if ep.endswith(":503"))
    assert other < runs[1][0]  # another device is not held up


async def test_transient_failures_are_retried_with_backoff_and_reported(
        tmp_path: Path) -> None:
    assets = [fake_asset("flaky", "oserror", port=1), fake_asset("locked", "auth", port=2)]
    got, summary = await audit(tmp_path, assets, retries=2, retry_backoff=0.1,
                               device_min_interval=0)
    by_asset = {o.asset.id: o for o in got}
    flaky_runs = sorted(s for ep, s, _ in TimedProbe.runs if ep.endswith(":1"))
    assert len(flaky_runs) == 3
    assert flaky_runs[1] - flaky_runs[0] >= 0.09 and flaky_runs[2] - flaky_runs[1] >= 0.19
    errors = by_asset["flaky"].errors
    assert errors[0].startswith("attempt 1 of 3: error: network error")
    assert errors[1].startswith("attempt 2 of 3")
    assert by_asset["locked"].status == "auth_failed"  # never retried: would lock accounts
    assert len([1 for ep, *_ in TimedProbe.runs if ep.endswith(":2")]) == 1
    assert summary.retries == 2 and len(got) == 2


async def test_a_closed_window_or_shutdown_stops_new_probe_runs(
        tmp_path: Path) -> None:
    seen: list[int] = []
    control = AuditControl(allowed=lambda: len(seen) < 2)
    assets = [fake_asset(f"a{i}", port=100 + i) for i in range(5)]
    _, plans = load_plan(write_inventory(tmp_path / "inv.yaml", "s", assets))

    async def sink(obs: Observation) -> None:
        seen.append(1)

    summary = await audit_assets(plans, sink, settings=Settings(concurrency=1), site="s",
                                 collector="c", control=control)
    assert summary.observations == 2 and summary.skipped == 3

    stopping = asyncio.Event()
    stopping.set()
    got, summary = await audit(tmp_path, assets, AuditControl(stopping=stopping))
    assert got == [] and summary.skipped == 5


class LongTimedProbe(TimedProbe):
    typical_seconds = 5.0


async def test_the_longest_expected_runs_start_first(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import otaudit.probes as probes

    monkeypatch.setitem(probes.REGISTRY, "fake2", f"{__name__}:LongTimedProbe")
    long_ones = [{**fake_asset(f"long{i}", port=200 + i),
                  "endpoints": {"fake2": {"host": "127.0.0.1", "port": 200 + i}}}
                 for i in range(2)]
    assets = [fake_asset(f"short{i}", port=100 + i) for i in range(3)] + long_ones
    got, _ = await audit(tmp_path, assets, concurrency=1, device_min_interval=0)
    started = [ep for ep, _, _ in sorted(TimedProbe.runs, key=lambda run: run[1])]
    assert [ep.rsplit(":", 1)[1] for ep in started] == ["200", "201", "100", "101", "102"]
    assert len(got) == 5
