"""Evaluation speed: N assets (PLCs, switches, HMIs with fixture-derived facts) × all checks.

    .venv/bin/python tests/baseline/bench_evaluate.py [N]
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from baseline_testkit import NOW, asset

from otaudit.server.baseline import (
    evaluate,
    load_attestations,
    load_baseline,
    load_exceptions,
)
from otaudit.server.baseline.fixtures import load_fixtures
from otaudit.server.baseline.model import AssetFacts

PROBES = {"plc": {"modbus": "ok", "s7": "ok"}, "switch": {"snmp": "ok", "ssh": "ok"},
          "hmi": {"ssh": "ok"}}


def plant(n: int, seed: int = 1) -> list[AssetFacts]:
    """``n`` assets whose facts mix the fixture cases of their kind (pass, fail, missing)."""
    baseline = load_baseline()
    pools: dict[str, list[dict]] = {}
    for cid, fixture in load_fixtures(baseline.root, []).items():
        kinds = baseline.checks[cid].applies_to.kinds or ["switch"]
        for case in fixture.file.cases:
            pools.setdefault(case.kind or kinds[0], []).append(case.facts)
    rng = random.Random(seed)
    assets = []
    for i in range(n):
        kind = ("plc", "switch", "hmi")[i % 3]
        facts: dict = {}
        for sample in rng.sample(pools[kind], min(12, len(pools[kind]))):
            facts.update(sample)
        assets.append(asset(f"a{i:04d}", kind, f"z{i % 5}", facts, PROBES[kind],
                            observation=f"obs-{i}"))
    return assets


def measure(n: int = 1000, repeat: int = 5) -> tuple[float, int]:
    """Best wall time of ``repeat`` evaluations of ``n`` assets; and the finding count.
    (``measure_cpu`` gives the CPU time, which a loaded machine disturbs less.)"""
    return _measure(n, repeat, time.perf_counter)


def measure_cpu(n: int = 1000, repeat: int = 5) -> tuple[float, int]:
    return _measure(n, repeat, time.process_time)


def _measure(n: int, repeat: int, clock) -> tuple[float, int]:
    baseline = load_baseline()
    examples = baseline.root / "examples"
    exceptions = load_exceptions(examples / "exceptions.yaml")
    attestations = load_attestations(examples / "attestations.yaml")
    zones = {f"z{k}": k % 4 + 1 for k in range(5)}
    assets = plant(n)
    best, count = float("inf"), 0
    for _ in range(repeat):
        start = clock()
        ev = evaluate(baseline, zones, assets, exceptions=exceptions, attestations=attestations,
                      now=NOW)
        best = min(best, clock() - start)
        count = len(ev.findings)
    return best, count


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    seconds, findings = measure(n)
    cpu, _ = measure_cpu(n)
    checks = len(load_baseline().checks)
    print(f"{n} assets x {checks} checks -> {findings} findings, 5 zones: "
          f"{seconds * 1000:.0f} ms wall, {cpu * 1000:.0f} ms CPU (best of 5)")
