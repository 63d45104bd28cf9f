"""Pacing counts from the wire, for every protocol, even when the event loop is loaded.

A task that hogs the collector's event loop (blocks it up to 60 ms at a time) delays the bytes
of a request after ``pace()`` let it go: TCP connects, S7 COTP and setup, the SSH key
exchange and channel opens complete late. The interval must count from when the last
packet left (``ProbeContext.sent``), so the gaps the simulators stamp - in worker
processes of their own, unaffected by the collector's load - stay at least the minimum
interval, with a tolerance for the stamping clock only.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from otaudit.collector.targets import plan_inventory
from otaudit.inventory import Inventory
from otaudit.probes.runner import run_probe
from otaudit.simulators.fleet import Fleet, generate_layout
from otaudit.simulators.fleet.politeness import check_politeness

SUBNET = 207  # a plant of its own (see tests/fleet/test_fleet_plant.py)
INTERVAL = 0.1
CLOCK = 0.02  # the simulators stamp when their loop handles the bytes: scheduling jitter
HOG_BLOCK = 0.06  # the loaded loop: blocked up to this long at a time, then free for 5 ms
PROTOCOLS = {"modbus", "s7", "snmp", "ssh", "enip", "opcua"}


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Fleet]:
    layout = generate_layout(30, seed=3, port_mode="any", faults=False, subnet=SUBNET)
    running = Fleet(layout, tmp_path / "plant", workers=2).start()
    try:
        for name, value in running.env().items():
            monkeypatch.setenv(name, value)
        yield running
    finally:
        running.stop()


async def _hog(stop: asyncio.Event) -> int:
    """Block the event loop again and again (CPU-bound work in the collector's loop)."""
    blocks, rng = 0, random.Random(22)
    while not stop.is_set():
        time.sleep(rng.uniform(0, HOG_BLOCK))  # irregular, as real load is
        blocks += 1
        await asyncio.sleep(0.005)
    return blocks


async def test_gaps_on_the_wire_hold_under_a_loaded_loop(fleet: Fleet) -> None:
    inventory = Inventory.model_validate(fleet.inventory())
    jobs = [job for plan in plan_inventory(inventory) for job in plan.jobs]
    assert {probe.name for probe, _ in jobs} == PROTOCOLS
    stop = asyncio.Event()
    hog = asyncio.create_task(_hog(stop))
    try:
        observations = await asyncio.gather(*(
            run_probe(probe, target, collector_id="pacing-test", site=inventory.site,
                      deadline=60.0, min_interval=INTERVAL) for probe, target in jobs))
    finally:
        stop.set()
        blocks = await hog
    assert blocks > 20  # the loop was loaded throughout
    slow = [(o.asset.id, o.reason) for o in observations if o.status.value == "timeout"]
    assert not slow  # the load slows the runs down, it does not make them fail
    by_id = {d.id: d for d in fleet.layout.devices}
    assert {by_id[o.asset.id].protocol for o in observations if o.status.value == "ok"
            } == PROTOCOLS
    fleet.stop()
    report = check_politeness(fleet.log_dir, INTERVAL, tolerance=CLOCK)
    judged: dict[str, int] = {}
    short: dict[str, list[float]] = {}
    for device in report.devices:
        judged[device.protocol] = judged.get(device.protocol, 0) + len(device.gaps)
        gaps = [round(g * 1000, 1) for g in device.gaps if g < INTERVAL - CLOCK]
        if gaps:
            short[f"{device.device} ({by_id[device.device].variant})"] = gaps
    assert not short, f"gaps under {(INTERVAL - CLOCK) * 1000:.0f} ms: {short}"
    assert set(judged) == PROTOCOLS and all(judged.values()), judged
