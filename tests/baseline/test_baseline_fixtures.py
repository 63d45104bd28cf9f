"""Every check's fixture cases (baselines/tests/<check>.yaml) give the expected results."""

from __future__ import annotations

import re

import pytest
from baseline_testkit import fixture_baseline_copy  # noqa: F401  (fixture)

from otaudit.server.baseline import load_baseline
from otaudit.server.baseline.fixtures import (
    expectation_kinds,
    load_fixtures,
    run_case,
    run_fixtures,
)

_BASELINE = load_baseline()
_PROBLEMS: list = []
_FIXTURES = load_fixtures(_BASELINE.root, _PROBLEMS)


def test_fixture_files_load_cleanly():
    assert _PROBLEMS == []
    assert set(_FIXTURES) == set(_BASELINE.checks), "one fixture file per check"


@pytest.mark.parametrize("check_id", sorted(_BASELINE.checks))
def test_check_has_pass_fail_and_not_applicable_cases(check_id):
    kinds = expectation_kinds(_FIXTURES[check_id])
    on_fail = _BASELINE.checks[check_id].on_fail
    assert {"pass", on_fail, "not_applicable"} <= kinds


@pytest.mark.parametrize(("check_id", "index"), [
    pytest.param(cid, i, id=f"{cid}:{case.name}")
    for cid, fixture in sorted(_FIXTURES.items())
    for i, case in enumerate(fixture.file.cases)
])
def test_fixture_case(check_id, index):
    case = _FIXTURES[check_id].file.cases[index]
    for level, expected in sorted(case.expectations().items()):
        finding = run_case(_BASELINE, check_id, case, level)
        assert finding.status == expected, (
            f"SL {level}: expected {expected}, got {finding.status}: {finding.message}")
        assert finding.level == level
        if expected in ("fail", "capability_gap"):
            # evidence names the facts that decided it, with their observation
            decisive = [e for e in finding.evidence if e.result == "false"]
            assert decisive and all(e.present and e.observation_id for e in decisive)
            assert not re.search(r"\{\$?[a-z_][a-z0-9_.]*\}", finding.message), "unfilled"
        if expected == "unknown":
            assert finding.reason and finding.message


def test_fixture_for_unknown_check_is_reported(baseline_copy):
    (baseline_copy / "tests" / "OTA-XX-999.yaml").write_text(
        "schema_version: 1\ncheck: OTA-XX-999\ncases:\n  - {name: x, expect: pass}\n")
    _, problems = run_fixtures(load_baseline(baseline_copy))
    assert any("OTA-XX-999" in str(p) and "unknown check" in str(p) for p in problems)

