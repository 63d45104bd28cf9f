"""Helpers for the baseline tests: a fact catalogue parsed from docs/facts.md, fixtures
for the bundled baseline and a writable copy, hand-built assets."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from otaudit.facts import FactSpec
from otaudit.server.baseline import Baseline, load_baseline
from otaudit.server.baseline.loader import bundled_root
from otaudit.server.baseline.model import AssetFacts, FactRecord

REPO = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)
_ROW = re.compile(r"^\|\s*(`[^|]+)\|\s*([a-z]+)\s*\|")


def docs_catalogue(path: Path = REPO / "docs" / "facts.md") -> dict[str, FactSpec]:
    """The fact catalogue as documented in docs/facts.md (tables: path | type | meaning)."""
    out: dict[str, FactSpec] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _ROW.match(line)
        if match:
            for fact in re.findall(r"`([a-z0-9_]+(?:\.[a-z0-9_]+)+)`", match.group(1)):
                out[fact] = FactSpec(match.group(2), "from docs/facts.md")  # type: ignore[arg-type]
    return out


# Fixtures: import the ``fixture_*`` names into a test module to use them by their name.
@pytest.fixture(scope="session", name="catalogue")
def fixture_catalogue() -> dict[str, FactSpec]:
    return docs_catalogue()


@pytest.fixture(scope="session", name="baseline")
def fixture_baseline() -> Baseline:
    return load_baseline()


@pytest.fixture(name="baseline_copy")
def fixture_baseline_copy(tmp_path: Path) -> Path:
    """A writable copy of the bundled baseline folder."""
    root = tmp_path / "baselines"
    shutil.copytree(bundled_root(), root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def asset(asset_id: str, kind: str, zone: str, facts: dict[str, Any] | None = None,
          probes: dict[str, str] | None = None, unknown: dict[str, str] | None = None,
          observation: str = "obs-1") -> AssetFacts:
    return AssetFacts(
        asset_id=asset_id, kind=kind, zone=zone,
        facts={p: FactRecord(value=v, observation_id=observation, probe=next(iter(probes or
               {"x": "ok"})), collected_at=NOW, evidence=["e1"]) for p, v in (facts or {}).items()},
        unknown=dict(unknown or {}), probe_status=dict(probes or {}))


def pass_facts(baseline: Baseline, kind: str, probes: set[str],
               os_family: str = "linux") -> dict[str, Any]:
    """Facts that pass every check relevant to ``kind``/``probes`` (and, for hosts, the OS
    family) at every level, built from the fixtures (the union of each check's all-levels
    pass case)."""
    from otaudit.server.baseline.fixtures import load_fixtures

    facts: dict[str, Any] = {}
    for cid, fixture in load_fixtures(baseline.root, []).items():
        check = baseline.checks[cid]
        if check.applies_to.kinds and kind not in check.applies_to.kinds:
            continue
        if check.applies_to.probes and not set(check.applies_to.probes) & probes:
            continue
        if check.applies_to.os and os_family not in check.applies_to.os:
            continue
        for case in fixture.file.cases:
            if set(case.expectations().values()) == {"pass"} and len(case.expectations()) == 4 \
                    and (case.kind in (None, kind)) and case.probes is None:
                facts.update(case.facts)
                break
    return facts
