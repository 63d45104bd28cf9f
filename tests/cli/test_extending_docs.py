"""docs/extending.md, done as written: the files of its worked examples are taken from the
page itself, and its commands are run (a site check through the whole chain)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from otaudit.cli.main import app
from otaudit.simulators import create_simulator

from tests_helpers import doc_blocks, wait_for_line

DOC = Path(__file__).resolve().parents[2] / "docs" / "extending.md"
OTAUDIT = str(Path(sys.executable).with_name("otaudit"))
BLOCK = re.compile(r"<!-- file: (\S+) -->\n```\w*\n(.*?)```", re.S)


def write_doc_files(root: Path) -> list[Path]:
    written = []
    for name, body in BLOCK.findall(DOC.read_text()):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
        written.append(path)
    return written


@pytest.fixture
def site(tmp_path: Path) -> Path:
    files = write_doc_files(tmp_path)
    assert {p.relative_to(tmp_path).as_posix() for p in files} >= {
        "site/checks/site/OTA-SITE-001.yaml", "site/controls/iec62443-3-3.yaml",
        "site/tests/OTA-SITE-001.yaml", "profiles/cpu-1212c.yaml"}
    return tmp_path


def test_site_check_lints_and_its_fixtures_pass(site: Path) -> None:
    runner = CliRunner()
    lint = runner.invoke(app, ["baseline", "lint", "--baseline", str(site / "site")])
    assert lint.exit_code == 0, lint.output
    tested = runner.invoke(app, ["baseline", "test", "--baseline", str(site / "site"), "-v"])
    assert tested.exit_code == 0, tested.output
    assert "OTA-SITE-001 [older release] SL 2: ok" in tested.output
    controls = runner.invoke(app, ["baseline", "controls", "--baseline", str(site / "site")])
    assert re.search(r"SR 7.6 .*OTA-S7-006, (OTA-WIN-00\d, )*OTA-SITE-001", controls.output), \
        controls.output


def test_a_clash_with_a_bundled_check_names_both_files(site: Path) -> None:
    check = site / "site" / "checks" / "site" / "OTA-SITE-001.yaml"
    clash = check.with_name("OTA-S7-006.yaml")
    clash.write_text(check.read_text().replace("OTA-SITE-001", "OTA-S7-006"))
    lint = CliRunner().invoke(app, ["baseline", "lint", "--baseline", str(site / "site")])
    assert lint.exit_code == 1
    assert re.search(r"OTA-S7-006.yaml:\d+: duplicate check id 'OTA-S7-006' \(first defined "
                     r"in baselines/checks/s7/OTA-S7-006.yaml:\d+\)", lint.output), lint.output


async def test_site_profile_answers_the_probe(site: Path) -> None:
    device = create_simulator("s7", site / "profiles" / "cpu-1212c.yaml")
    async with device:
        done = subprocess.run([OTAUDIT, "probe", "s7", "127.0.0.1", "--port", str(device.port),
                               "--family", "s7-1200", "--json"],
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout)["facts"]
    assert facts["identity.order_code"]["value"] == "6ES7 212-1BE40-0XB0"
    assert facts["identity.firmware_version"]["value"] == "V4.4.1"
    assert facts["s7.protection_level"]["value"] == 2


@pytest.mark.slow
async def test_site_check_and_vendor_show_up_in_the_report_of_a_server_run(
        site: Path, mosquitto_url: str, sqlite_url: str) -> None:
    """sim → collector (site vendor rule) → Mosquitto → `server run --baseline site` →
    `report --baseline site`: the site's check judges the S7 CPU, the site's vendor rule
    names the gateway of the SNMP section's recording."""
    prefix = f"otaudit-test/{uuid.uuid4().hex[:10]}"
    vendor_dir = site / "vendors"
    vendor_dir.mkdir()
    snmp = doc_blocks("Add a vendor (SNMP identity)")
    (vendor_dir / "snmp-vendors.yaml").write_text(snmp["yaml"][0])
    (site / "io-gw.snmprec").write_text(snmp["text"][0])
    env = {**os.environ, "OTAUDIT_TOPIC_PREFIX": prefix, "OTAUDIT_BROKER_URL": mosquitto_url,
           "OTAUDIT_DATABASE_URL": sqlite_url, "OTAUDIT_STATE_DIR": str(site / "state"),
           "OTAUDIT_SERVER_CLIENT_ID": f"srv-{uuid.uuid4().hex[:8]}",
           "OTAUDIT_VENDOR_DIR": str(vendor_dir), "GW_COMMUNITY": "public"}
    device = create_simulator("s7", "s7-1200-weak")  # firmware V4.5.2 < the approved V4.6.0
    gateway = create_simulator("snmp", None, snmprec=site / "io-gw.snmprec")
    async with device, gateway:
        inventory = site / "plant.yaml"
        inventory.write_text(
            "site: plant-a\nzones: [{id: cell-1, sl_t: 2}]\nassets:\n"
            f"  - {{id: plc-1, kind: plc, zone: cell-1, endpoints: {{s7: {{host: 127.0.0.1, "
            f"port: {device.port}, family: s7-1200}}}}}}\n"
            f"  - {{id: gw-1, kind: gateway, zone: cell-1, endpoints: {{snmp: {{host: "
            f"127.0.0.1, port: {gateway.port}, community: {{env: GW_COMMUNITY}}}}}}}}\n")
        server = subprocess.Popen([OTAUDIT, "server", "run", "--baseline", str(site / "site"),
                                   "--inventory", str(inventory)], env=env,
                                  stderr=subprocess.PIPE, text=True)
        try:


            line = wait_for_line(server, "server: subscribed at", timeout=60)
            assert "site baseline" in line
            collector = await asyncio.to_thread(  # the SNMP simulator answers in this loop
                subprocess.run, [OTAUDIT, "collector", "run", "-i", str(inventory), "--once"],
                env=env, capture_output=True, text=True, timeout=120)
            assert collector.returncode == 0, collector.stdout + collector.stderr
            finding, assets = _wait_for_site_finding(env, site)
        finally:
            server.terminate()
            server.wait(30)
    assert finding["status"] == "fail"
    assert "runs firmware V4.5.2; the plant approved V4.6.0" in finding["message"]
    assert finding["requirements"] == ["SR 7.6"]
    assert assets["gw-1"]["identity"]["vendor"] == "Example Automation"


def _wait_for_site_finding(env: dict[str, str], site: Path) -> tuple[dict, dict]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done = subprocess.run([OTAUDIT, "report", "--baseline", str(site / "site"),
                               "--format", "json"], env=env, capture_output=True, text=True,
                              timeout=60)
        if done.returncode == 0:
            assets = {a["asset_id"]: a for a in json.loads(done.stdout)["assets"]}
            for asset in assets.values():
                for finding in asset["findings"]:
                    if finding["check_id"] == "OTA-SITE-001" and "gw-1" in assets:
                        return finding, assets
        time.sleep(0.5)
    raise AssertionError("no OTA-SITE-001 finding in the report within 60 s")
