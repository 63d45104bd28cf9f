"""End to end: four simulated Windows HMI stations (two over SSH, two over WinRM, one of
which answers a malformed SOAP reply) → collector → MQTT → server → findings and advisory
verdicts; the stations saw only allowlisted commands; the broken one fails its own run."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from otaudit.cli.demo import run_pipeline
from otaudit.probes.ssh.allowlist import ALLOWLIST
from otaudit.server.db import FindingRow, make_engine
from otaudit.settings import Settings

pytestmark = pytest.mark.slow
PLANT = Path(__file__).parent / "data" / "windows_plant.yaml"
WINDOWS_CHECKS = ("OTA-WIN-001", "OTA-WIN-002", "OTA-WIN-003", "OTA-WIN-004", "OTA-WIN-005",
                  "OTA-WIN-006", "OTA-HOST-007", "OTA-HOST-008", "OTA-HOST-009",
                  "OTA-HOST-011", "OTA-HOST-014")


def _findings(url: str) -> dict[str, dict[str, str]]:
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(FindingRow.asset_id, FindingRow.check_id,
                                      FindingRow.status)).all()
    engine.dispose()
    out: dict[str, dict[str, str]] = {}
    for asset, check, status in rows:
        out.setdefault(asset, {})[check] = status
    return out


async def _run(tmp_path: Path, mosquitto_url: str, database_url: str | None):
    settings = Settings(topic_prefix=f"otaudit-test/{uuid.uuid4().hex[:10]}")
    result = await run_pipeline(tmp_path, broker_url=mosquitto_url, plant_file=PLANT,
                                database_url=database_url, settings=settings)
    assert result.published == result.stored == 4 and result.rejected == 0
    return result


def _check(result, found: dict[str, dict[str, str]]) -> None:
    weak, hardened = found["hmi-line3"], found["hmi-line4"]
    assert {c: weak.get(c) for c in WINDOWS_CHECKS} == {
        "OTA-WIN-001": "fail", "OTA-WIN-002": "fail", "OTA-WIN-003": "fail",
        "OTA-WIN-004": "fail", "OTA-WIN-005": "fail", "OTA-WIN-006": "fail",
        "OTA-HOST-007": "fail", "OTA-HOST-008": "fail", "OTA-HOST-009": "fail",
        "OTA-HOST-011": "fail", "OTA-HOST-014": "fail"}
    assert {c: hardened.get(c) for c in WINDOWS_CHECKS} == dict.fromkeys(WINDOWS_CHECKS, "pass")
    # Linux/sshd checks are not about Windows hosts (no finding, not unknown), and the
    # Windows checks are not about the Linux ones
    assert "OTA-HOST-001" not in weak and "OTA-HOST-013" not in hardened
    assert weak.get("OTA-HOST-017") == "fail"  # TightVNC on the line 3 station
    assets = {a["asset_id"]: a for a in result.report["assets"]}
    advisories = assets["hmi-line3"]["advisories"]
    wincc = [a for a in advisories if a.get("component") == "simatic-wincc"
             and a["advisory_id"] == "ICSA-22-132-06"]
    assert wincc and {a["state"] for a in wincc} == {"open"}
    assert all("V7.4 and earlier" in a["product_name"] for a in wincc)
    assert all(a["installed_version"] == "V7.4 SP1" and a["reason"] for a in wincc)
    assert all(a["summary"].startswith("installed simatic-wincc V7.4 SP1: ") for a in wincc)
    assert all(a.get("component") for a in advisories)  # none through the OS identity
    assert not [a for a in assets["hmi-line4"]["advisories"] if a["state"] == "open"
                and a["advisory_id"] == "ICSA-22-132-06"]
    for asset in ("hmi-line3", "hmi-line4", "hmi-line5"):
        commands = [d["command"] for kind, d in result.requests[asset] if kind in
                    ("exec", "shell", "command")]
        assert commands and set(commands) <= set(ALLOWLIST["windows"]), commands
        assert not any(kind == "shell" for kind, _ in result.requests[asset])
    # the same host over WinRM: the same findings as over SSH, its WinCC matched the same way
    winrm = found["hmi-line5"]
    assert {c: winrm.get(c) for c in WINDOWS_CHECKS} == {c: weak.get(c) for c in WINDOWS_CHECKS}
    assert winrm.get("OTA-HOST-017") == "fail"
    assert winrm.get("OTA-WIN-007") == "fail"  # its listener offers Basic
    assert "OTA-WIN-007" not in weak and "OTA-WIN-007" not in hardened  # not read over WinRM
    over_winrm = [(a["advisory_id"], a["state"], a["installed_version"]) for a in
                  assets["hmi-line5"]["advisories"] if a.get("component") == "simatic-wincc"]
    assert sorted(over_winrm) == sorted((a["advisory_id"], a["state"], a["installed_version"])
                                        for a in advisories
                                        if a.get("component") == "simatic-wincc")
    assert {kind for kind, _ in result.requests["hmi-line5"]} <= {
        "auth", "create", "command", "receive", "signal", "delete"}
    # a malformed reply fails that station's run only: its checks are unknown, with why
    broken = found["hmi-line6"]
    assert {broken.get(c) for c in ("OTA-HOST-007", "OTA-HOST-008", "OTA-HOST-009")} == {
        "unknown"}
    # the OS was not read, but only Windows answers WinRM: its Windows checks are unknown
    assert broken.get("OTA-WIN-001") == "unknown"
    assert broken.get("OTA-WIN-007") == "pass"  # read before the shell: Negotiate only


async def test_windows_stations_on_mosquitto_with_sqlite(tmp_path: Path,
                                                          mosquitto_url: str) -> None:
    result = await _run(tmp_path, mosquitto_url, None)
    _check(result, _findings(f"sqlite:///{tmp_path / 'otaudit.db'}"))


async def test_windows_stations_on_mosquitto_with_postgres(tmp_path: Path, mosquitto_url: str,
                                                           postgres_url: str) -> None:
    result = await _run(tmp_path, mosquitto_url, postgres_url)
    _check(result, _findings(postgres_url))
