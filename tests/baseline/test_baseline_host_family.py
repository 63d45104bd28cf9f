"""Which OS family a host's checks are chosen by (``applies_to.os``) when its run failed
before the OS was read: a host reached only over WinRM is Windows, so its Windows checks
are ``unknown`` (a gap in the evidence), never silently ``not_applicable``."""

from __future__ import annotations

import datetime as dt

import pytest
from baseline_testkit import asset, fixture_baseline  # noqa: F401

from otaudit.server.baseline.evaluator import evaluate, host_family

NOW = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
ZONES = {"hmi": {"FR1": 2, "FR2": 2, "FR3": 2, "FR4": 2, "FR5": 2, "FR6": 2, "FR7": 2}}


@pytest.mark.parametrize(("probes", "facts", "family"), [
    ({"winrm": "failed"}, {}, "windows"),
    ({"winrm": "ok"}, {}, "windows"),
    ({"ssh": "failed"}, {}, "linux"),
    ({"ssh": "failed", "winrm": "failed"}, {}, "linux"),  # both: nothing says which
    ({"winrm": "ok"}, {"os.family": "linux"}, "linux"),  # a fact always wins
    ({"ssh": "ok"}, {"os.family": "windows"}, "windows"),
    ({}, {}, "linux"),
])
def test_host_family(probes: dict, facts: dict, family: str) -> None:
    assert host_family(asset("hmi-1", "hmi", "hmi", facts, probes)) == family


def test_a_failed_winrm_run_leaves_windows_checks_unknown(baseline) -> None:
    failed = asset("hmi-1", "hmi", "hmi", {}, {"winrm": "failed"},
                   unknown={"os.family": "winrm: connection refused"})
    found = {f.check_id: str(f.status)
             for f in evaluate(baseline, ZONES, [failed], now=NOW).findings}
    windows = [cid for cid, check in baseline.checks.items()
               if check.applies_to.os == ["windows"] and "winrm" in (check.applies_to.probes or [])]
    assert windows, "the bundled baseline has Windows checks over WinRM"
    assert {found.get(cid) for cid in windows} == {"unknown"}
