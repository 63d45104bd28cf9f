"""The deliverable end to end on the demo plant: HTML in headless Chromium, the PDF's pages
and text, SARIF and OSCAL against their official schemas, CSV, and the signed evidence
package (verify passes, and names the file after one byte of it changed)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
import subprocess
import zipfile
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from otaudit.cli.demo import run_pipeline, write_reports
from otaudit.cli.main import app
from otaudit.server.baseline import load_baseline
from otaudit.server.reporting.machine import csv_tables, oscal_assessment_results, sarif_log

from conftest import missing_service, require_tool

pytestmark = pytest.mark.slow
SCHEMAS = Path(__file__).parent.parent / "fixtures" / "schemas"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's pipeline once (embedded broker, SQLite) and its three report files."""
    out = tmp_path_factory.mktemp("demo")
    result = asyncio.run(run_pipeline(out))
    write_reports(result.report, out)
    return out


@pytest.fixture(scope="module")
def document(demo: Path) -> dict:
    return json.loads((demo / "report.json").read_text())


def sarif_validator() -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator(json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text()))


def oscal_validator() -> jsonschema.Draft7Validator:
    text = (SCHEMAS / "oscal_assessment-results_schema-1.0.6.json").read_text()
    text = text.replace(r"\\p{L}", r"[^\\W\\d_]").replace(r"\\p{N}", r"\\d")  # for Python's re
    return jsonschema.Draft7Validator(json.loads(text),
                                      format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def test_the_zone_with_unknowns_shows_proven_below_reachable(document: dict) -> None:
    zones = {z["zone"]: z for z in document["zones"]}
    cell = zones["cell-1"]  # the serial gateway answers no identification: unknowns
    below = [fr for fr in cell["sl_t"] if cell["sl_a"][fr] < cell["sl_reachable"][fr]]
    assert below, (cell["sl_a"], cell["sl_reachable"])
    assert all(cell["sl_a"][fr] <= cell["sl_reachable"][fr] for fr in cell["sl_t"])
    assert 0 < cell["assessed_total"]["assessed"] < cell["assessed_total"]["total"]
    for zone in zones.values():
        assert all(r["why"] for r in zone["requirements"] if r["in_target"])
    meta = document["meta"]
    assert meta["tool"]["version"] and len(meta["baseline"]["digest"]) == 64
    assert len(meta["inventory"]["digest"]) == 64 and meta["site"] == "demo-plant"


def test_roadmap_names_requirements_and_assets(document: dict) -> None:
    for zone in document["zones"]:
        steps = document["roadmap"][zone["zone"]]
        unmet = {g["id"] for g in zone["failing"]}
        assert unmet <= {r for s in steps for r in s["closes"]}  # every gap has a way out
        assert [s["step"] for s in steps] == list(range(1, len(steps) + 1))
        fixes = [s for s in steps if s["kind"] == "fix"]
        assert fixes and all(s["assets"] and s["requirements"] for s in fixes)
        last = steps[-1]["sl_a_after"]
        assert all(last[fr] >= zone["sl_t"][fr] for fr in zone["sl_t"])


def test_html_opens_in_chromium_without_errors_or_requests(demo: Path) -> None:
    chromium, driver_path = require_tool("chromium"), require_tool("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing_service("selenium is not installed (pip install -e .[test])")
    html = (demo / "report.html").read_text()
    assert "<script" not in html.lower() and "@import" not in html and "url(" not in html
    assert re.findall(r'(?:src|href)\s*=\s*"(?!#)[^"]*"', html) == []  # only in-page links
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium fetch a driver
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        url = (demo / "report.html").as_uri()
        driver.get(url)
        assert "gap report" in driver.title
        assert len(driver.find_elements("css selector", "svg.chart")) >= 3
        assert driver.find_element("id", "roadmap").text.startswith("Remediation roadmap")
        console = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
        requests = [json.loads(e["message"])["message"] for e in driver.get_log("performance")]
    finally:
        driver.quit()
    assert console == []
    fetched = [m["params"]["request"]["url"] for m in requests
               if m["method"] == "Network.requestWillBeSent"]
    assert fetched and set(fetched) == {url}, fetched


def test_pdf_pages_and_text(demo: Path, tmp_path: Path) -> None:
    pdftoppm, pdftotext = require_tool("pdftoppm"), require_tool("pdftotext")
    pdf = demo / "report.pdf"
    subprocess.run([pdftoppm, "-r", "40", "-png", str(pdf), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 10 and all(p.stat().st_size > 1000 for p in pages)
    first = subprocess.run([pdftotext, "-layout", "-f", "1", "-l", "1", str(pdf), "-"],
                           check=True, capture_output=True, text=True).stdout
    assert "Site demo-plant" in first and "Baseline" in first and "Audit window" in first
    text = subprocess.run([pdftotext, str(pdf), "-"], check=True, capture_output=True,
                          text=True).stdout
    for heading in ("Executive summary", "Zone cell-1", "Zone control", "Patch status",
                    "Risk register", "NIS2 Art. 21(2) mapping", "Remediation roadmap",
                    "Appendix: method", "SL-A reachable", "EXC-2025-001", "plc-s7-1200"):
        assert heading in text, heading
    assert f"page 1 of {len(pages)}" in text


def test_sarif_validates_against_the_official_schema(document: dict) -> None:
    baseline = load_baseline()
    log = sarif_log(document, baseline.checks)
    validator = sarif_validator()
    assert list(validator.iter_errors(log)) == []
    run = log["runs"][0]
    assert {r["id"] for r in run["tool"]["driver"]["rules"]} == set(baseline.checks)
    rule = next(r for r in run["tool"]["driver"]["rules"] if r["id"] == "OTA-MB-001")
    assert "SR 1.1" in rule["properties"]["iec62443-3-3"] and rule["help"]["text"]
    results = run["results"]
    assert len(results) == sum(len(a["findings"]) for a in document["assets"])
    assert {r["kind"] for r in results} >= {"fail", "pass", "open", "notApplicable"}
    assert all(r["level"] == "none" for r in results if r["kind"] != "fail")
    compensated = [r for r in results if r["properties"]["status"] == "compensated"]
    assert compensated and all(r["suppressions"][0]["status"] == "accepted"
                               for r in compensated)
    broken = json.loads(json.dumps(log))
    broken["runs"][0]["results"][0]["level"] = "critical"
    assert list(validator.iter_errors(broken))  # the schema check can fail


def test_oscal_validates_against_the_nist_schema(document: dict) -> None:
    doc = oscal_assessment_results(document)
    validator = oscal_validator()
    assert list(validator.iter_errors(doc)) == []
    result = doc["assessment-results"]["results"][0]
    in_target = sum(1 for z in document["zones"] for r in z["requirements"] if r["in_target"])
    assert len(result["findings"]) == in_target
    states = {f["target"]["status"]["state"] for f in result["findings"]}
    assert states == {"satisfied", "not-satisfied"}
    assert oscal_assessment_results(document) == doc  # stable identifiers
    broken = json.loads(json.dumps(doc))
    broken["assessment-results"]["results"][0]["findings"][0]["target"]["type"] = "sr"
    assert list(validator.iter_errors(broken))


def test_csv_tables(document: dict) -> None:
    tables = csv_tables(document)
    findings = list(csv.DictReader(io.StringIO(tables["findings.csv"])))
    assert len(findings) == sum(len(a["findings"]) for a in document["assets"])
    reqs = list(csv.DictReader(io.StringIO(tables["requirements.csv"])))
    assert {r["zone"] for r in reqs} == {"cell-1", "control"} and all(r["why"] for r in reqs)
    inventory = list(csv.DictReader(io.StringIO(tables["inventory.csv"])))
    assert len(inventory) == len(document["assets"]) > 0
    assert {r["reached"] for r in inventory} == {"yes", "no"}
    patches = list(csv.DictReader(io.StringIO(tables["patches.csv"])))
    assert len(patches) == len(document["patches"]) > 0


def test_evidence_export_verify_and_one_changed_byte(demo: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    keys = tmp_path / "keys"
    assert runner.invoke(app, ["keys", "generate", "server", "--out", str(keys)]).exit_code == 0
    examples = Path(load_baseline().root) / "examples"
    monkeypatch.setenv("OTAUDIT_DATABASE_URL", f"sqlite:///{demo / 'otaudit.db'}")
    monkeypatch.setenv("OTAUDIT_SERVER_SIGNING_KEY_FILE", str(keys / "server.key"))
    package = tmp_path / "evidence.zip"
    result = runner.invoke(app, ["evidence", "export", "--site", "nosuch", "--out",
                                 str(package)])
    assert result.exit_code == 2 and "unknown site 'nosuch'; known: demo-plant" in result.output
    assert not package.exists()
    result = runner.invoke(app, ["evidence", "export", "--site", "demo-plant", "--out",
                                 str(package), "--exceptions", str(examples / "exceptions.yaml"),
                                 "--attestations", str(examples / "attestations.yaml"),
                                 "--inventory", str(demo / "inventory.yaml")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["evidence", "verify", str(package), "--key",
                                 str(keys / "server.pub")])
    assert result.exit_code == 0, result.output
    assert "ok" in result.output and "a key you trust" in result.output
    with zipfile.ZipFile(package) as zf:
        names = zf.namelist()
        members = {n: zf.read(n) for n in names}
    for needed in ("report/report.html", "report/report.pdf", "report/report.json",
                   "observations/observations.jsonl", "policy/exceptions.yaml",
                   "baseline/bundled/controls/iec62443-3-3.yaml", "SHA256SUMS", "README.txt"):
        assert needed in names, needed
    assert any(n.startswith("advisories/") for n in names)
    declared = json.loads(members["inventory/declared-demo-plant.json"])
    assert [c["id"] for c in declared["declared"]["conduits"]] == ["c-01", "c-02", "c-03"]
    lines = members["observations/observations.jsonl"].splitlines()
    assert lines and all(json.loads(line)["evidence"] is not None for line in lines)

    target = "report/report.json"
    changed = bytearray(members[target])
    changed[len(changed) // 2] ^= 0x01
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(tampered, "w") as zf:
        for name in names:
            zf.writestr(name, bytes(changed) if name == target else members[name])
    result = runner.invoke(app, ["evidence", "verify", str(tampered)])
    assert result.exit_code == 1, result.output
    assert f"{target}: differs from manifest.json" in result.output
    assert "1 problem(s)" in result.output

    other = tmp_path / "other"
    runner.invoke(app, ["keys", "generate", "other", "--out", str(other)])
    result = runner.invoke(app, ["evidence", "verify", str(package), "--key",
                                 str(other / "other.pub")])
    assert result.exit_code == 1 and "manifest.json: the signature" in result.output


def test_evidence_package_checks_with_standard_tools(demo: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """README.txt's commands: openssl verifies the signature, sha256sum -c every file."""
    openssl, sha256sum = require_tool("openssl"), require_tool("sha256sum")
    runner = CliRunner()
    runner.invoke(app, ["keys", "generate", "server", "--out", str(tmp_path / "keys")])
    monkeypatch.setenv("OTAUDIT_DATABASE_URL", f"sqlite:///{demo / 'otaudit.db'}")
    package = tmp_path / "evidence.zip"
    result = runner.invoke(app, ["evidence", "export", "--site", "demo-plant", "--zone",
                                 "cell-1", "--out", str(package), "--key",
                                 str(tmp_path / "keys" / "server.key")])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(package) as zf:
        zf.extractall(folder)
    verified = subprocess.run([openssl, "pkeyutl", "-verify", "-pubin", "-inkey",
                               "signing-key.pub", "-rawin", "-in", "manifest.json", "-sigfile",
                               "manifest.sig"], cwd=folder, capture_output=True, text=True)
    assert verified.returncode == 0 and "Signature Verified Successfully" in verified.stdout
    sums = subprocess.run([sha256sum, "-c", "SHA256SUMS"], cwd=folder, capture_output=True,
                          text=True)
    assert sums.returncode == 0, sums.stdout
    (folder / "report" / "report.html").write_text("changed")
    sums = subprocess.run([sha256sum, "-c", "SHA256SUMS"], cwd=folder, capture_output=True,
                          text=True)
    assert sums.returncode != 0 and "report/report.html: FAILED" in sums.stdout


def test_demo_conduits_decide_sr_5_1_and_5_2(demo: Path, document: dict) -> None:
    """The demo's control network reaches the office without an enforcing device, and a
    vendor VPN sends S7 into cell 1: both show as failed conduit checks with their facts."""
    zones = {z["zone"]: {r["id"]: r for r in z["requirements"]} for z in document["zones"]}
    why = {r["id"]: r for r in zones["control"]["SR 5.1"]["why"]}
    assert zones["control"]["SR 5.1"]["status"] == "fail" and why["OTA-NET-001"]["assets"] == [
        "zone:control"]
    assert "c-02" in why["OTA-NET-001"]["text"] and why["OTA-NET-001"]["evidence"]
    cell = {r["id"]: r for r in zones["cell-1"]["SR 5.2"]["why"]}
    assert cell["OTA-NET-002"]["status"] == "fail"
    assert document["conduits"]["control"][1]["peer"] == "office-it"
    assert document["meta"]["inventory"]["declares_conduits"] is True
    html = (demo / "report.html").read_text()
    assert "vendor-vpn (network, untrusted)" in html and "office-it (network, untrusted)" in html
