"""Check fixtures: fact sets stored next to the checks with the result each must give.

``baselines/tests/<check_id>.yaml``::

    schema_version: 1
    check: OTA-S7-001
    cases:
      - name: write protection is enough up to SL 2 only
        facts: {s7.classic_access: true, s7.protection_level: 2}
        expect: {1: pass, 2: pass, 3: fail, 4: fail}
      - name: not an S7 asset
        kind: switch
        expect: not_applicable

``kind`` defaults to the check's first asset kind, ``probes`` to the check's probes with
status ``ok``. ``expect`` is one result for every level (or for ``level``), or a mapping
level → result. ``otaudit baseline test`` and ``tests/baseline`` run the same cases.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from otaudit.server.baseline.evaluator import evaluate_check
from otaudit.server.baseline.format import Check, FixtureCase, FixtureFile
from otaudit.server.baseline.loader import Baseline, Problem, Source, _parse
from otaudit.server.baseline.model import AssetFacts, FactRecord, Finding

FIXED_TIME = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Fixture:
    file: FixtureFile
    source: Source


@dataclass(frozen=True)
class Outcome:
    check_id: str
    case: str
    level: int
    expected: str
    actual: str
    where: str  # file:line of the case
    message: str

    @property
    def ok(self) -> bool:
        return self.expected == self.actual

    def __str__(self) -> str:
        verdict = "ok" if self.ok else f"FAILED: expected {self.expected}, got {self.actual}"
        return f"{self.where}: {self.check_id} [{self.case}] SL {self.level}: {verdict}" + (
            "" if self.ok else f" ({self.message})")


def baseline_fixtures(baseline: Baseline, problems: list[Problem]) -> dict[str, Fixture]:
    """The fixtures of every folder of the baseline: bundled ``tests/``, then the site's."""
    out: dict[str, Fixture] = {}
    for n, root in enumerate(baseline.roots):
        out = load_fixtures(root, problems, required=n == 0, into=out)
    return out


def load_fixtures(root: Path, problems: list[Problem], *, required: bool = True,
                  into: dict[str, Fixture] | None = None) -> dict[str, Fixture]:
    """Every fixture file under ``root/tests`` (added to ``into``); problems are appended
    to ``problems``."""
    out: dict[str, Fixture] = {} if into is None else into
    folder = root / "tests"
    if not folder.is_dir():
        if required:
            problems.append(Problem(str(folder), None, "missing fixtures folder"))
        return out
    for path in sorted(folder.glob("*.y*ml")):
        data, src = _parse(path, root, FixtureFile, problems)
        if data is None or src is None:
            continue
        if Path(src.file).stem != data.check:
            problems.append(src.at(("check",), f"fixture for {data.check!r} must be named "
                                   f"{data.check}.yaml"))
        if data.check in out:
            problems.append(src.at(("check",), f"second fixture file for {data.check} (first: "
                                   f"{out[data.check].source.file})"))
            continue
        out[data.check] = Fixture(data, src)
    return out


def fixture_asset(check: Check, case: FixtureCase) -> AssetFacts:
    """The asset a fixture case describes (facts recorded with a fixed provenance)."""
    kind = case.kind or (check.applies_to.kinds[0] if check.applies_to.kinds else "switch")
    probes = case.probes if case.probes is not None else dict.fromkeys(
        check.applies_to.probes or [], "ok")
    probe = next(iter(probes), "fixture")
    facts = {
        path: FactRecord(value=value, observation_id=f"fixture-{check.id}", probe=probe,
                         collected_at=FIXED_TIME, evidence=["e1"])
        for path, value in case.facts.items()
    }
    return AssetFacts(asset_id=f"fixture-{kind}", kind=kind, zone="fixture", facts=facts,
                      unknown=dict(case.unknown), probe_status=dict(probes))


def run_case(baseline: Baseline, check_id: str, case: FixtureCase, level: int) -> Finding:
    check = baseline.checks[check_id]
    return evaluate_check(baseline, check_id, fixture_asset(check, case), level)


def run_fixtures(baseline: Baseline, fixtures: dict[str, Fixture] | None = None,
                 ) -> tuple[list[Outcome], list[Problem]]:
    """Run every case of every fixture file; return outcomes and loading problems."""
    problems: list[Problem] = []
    if fixtures is None:
        fixtures = baseline_fixtures(baseline, problems)
    outcomes: list[Outcome] = []
    for check_id, fixture in sorted(fixtures.items()):
        if check_id not in baseline.checks:
            problems.append(fixture.source.at(("check",), f"unknown check {check_id!r}"))
            continue
        for i, case in enumerate(fixture.file.cases):
            where = f"{fixture.source.file}:{fixture.source.doc.line_of(('cases', i))}"
            for level, expected in sorted(case.expectations().items()):
                finding = run_case(baseline, check_id, case, level)
                outcomes.append(Outcome(check_id, case.name, level, expected, finding.status,
                                        where, finding.message))
    return outcomes, problems


def expectation_kinds(fixture: Fixture) -> set[str]:
    return {e for case in fixture.file.cases for e in case.expectations().values()}


def case_facts(fixture: Fixture) -> list[tuple[int, dict[str, Any]]]:
    return [(i, dict(case.facts)) for i, case in enumerate(fixture.file.cases)]
