"""``must_not_drift`` (drift.yaml): schema and fact names linted with lines, maintenance
windows (overnight, weekdays, time zones), a site overlay's rule replacing the bundled one."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from baseline_testkit import fixture_baseline_copy, fixture_catalogue  # noqa: F401

from otaudit.server.baseline import load_baseline, read_baseline
from otaudit.server.baseline.lint import lint
from otaudit.server.drift.policy import Window


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_the_bundled_policy_guards_serial_host_key_and_firmware() -> None:
    rules = load_baseline().drift.rules
    assert set(rules) == {"identity.serial", "ssh.host_key_fingerprint",
                          "identity.firmware_version"}
    verdict = load_baseline().drift.judge("identity.serial", at("2026-12-01T10:00"),
                                          at("2026-12-01T16:00"))
    assert verdict is not None and (verdict.policy, verdict.severity) == ("violation", "high")
    assert load_baseline().drift.judge("s7.protection_level", at("2026-12-01T10:00"),
                                       at("2026-12-01T16:00")) is None


def test_an_overnight_window_on_saturdays() -> None:
    window = Window(weekdays=["sat"], start="22:00", end="04:00")  # 2026-12-05 is a Saturday
    assert window.overlaps(at("2026-12-05T20:00"), at("2026-12-05T21:00")) is False
    assert window.overlaps(at("2026-12-05T21:00"), at("2026-12-05T22:30")) is True
    assert window.overlaps(at("2026-12-06T03:00"), at("2026-12-06T09:00")) is True  # Sat night
    assert window.overlaps(at("2026-12-06T04:01"), at("2026-12-06T21:00")) is False  # Sunday
    assert window.overlaps(at("2026-12-07T08:00"), at("2026-12-07T09:00")) is False  # Monday
    assert window.overlaps(at("2026-11-01T00:00"), at("2026-12-01T00:00")) is True  # a month


def test_a_window_in_local_time() -> None:
    window = Window(start="02:00", end="03:00", timezone="Europe/Berlin")  # UTC+1 in December
    assert window.overlaps(at("2026-12-02T01:30"), at("2026-12-02T01:40")) is True
    assert window.overlaps(at("2026-12-02T02:30"), at("2026-12-02T02:40")) is False


def test_an_overlay_window_makes_firmware_drift_in_window(tmp_path: Path) -> None:
    overlay = tmp_path / "site"
    (overlay / "checks").mkdir(parents=True)
    (overlay / "drift.yaml").write_text(
        "must_not_drift:\n  - fact: identity.firmware_version\n    severity: critical\n"
        "    maintenance_window: {weekdays: [sat], start: '22:00', end: '04:00'}\n")
    policy = load_baseline(overlay=overlay).drift
    inside = policy.judge("identity.firmware_version", at("2026-12-05T18:00"),
                          at("2026-12-06T00:00"))
    outside = policy.judge("identity.firmware_version", at("2026-12-07T08:00"),
                           at("2026-12-07T14:00"))
    assert inside is not None and inside.policy == "in_window"
    assert outside is not None and (outside.policy, outside.severity) == ("violation",
                                                                          "critical")
    assert "identity.serial" in policy.rules  # the bundled rules stay


@pytest.mark.parametrize(("text", "line", "message"), [
    ("must_not_drift:\n  - identity.firmwre_version\n", 2,
     "unknown fact path 'identity.firmwre_version'"),
    ("must_not_drift:\n  - identity.serial\n  - identity.serial\n", 3, "listed twice"),
    ("must_not_drift: [identity.serial]\nmaintenance_window:\n  start: '25:00'\n"
     "  end: '04:00'\n", 3, "not a time HH:MM"),
    ("must_not_drift: [identity.serial]\nmaintenance_window: {start: '01:00', end: '02:00',"
     " timezone: Mars/Olympus}\n", 2, "unknown time zone"),
    ("must_not_drift:\n  - fact: identity.serial\n    when: always\n", 3, "unknown field"),
])
def test_lint_names_file_and_line(baseline_copy: Path, catalogue: dict, text: str,
                                  line: int, message: str) -> None:
    (baseline_copy / "drift.yaml").write_text(text)
    problems = [p for p in lint(baseline_copy, catalogue) if p.file.endswith("drift.yaml")]
    assert any(p.line == line and message in p.message for p in problems), problems


def test_a_broken_drift_file_stops_loading(baseline_copy: Path) -> None:
    (baseline_copy / "drift.yaml").write_text("must_not_drift: {a: 1}\n")
    base, problems = read_baseline(baseline_copy)
    assert base is not None and any("must_not_drift" in p.message for p in problems)
