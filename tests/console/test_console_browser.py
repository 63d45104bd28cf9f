"""The console in Debian's headless Chromium (Selenium) on a real socket: sign in, walk
sites → zone → asset → evidence, filter findings, record an exception as auditor and see
the zone's requirement outcome change, be refused as viewer, download the evidence package;
no console error and no request to anything but 127.0.0.1. Screenshots go to a tmp dir
(OTAUDIT_CONSOLE_SHOTS=DIR keeps them: the best four are docs/console-*.png)."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from otaudit.server.api import create_app
from otaudit.signing import private_pem

from conftest import missing_service, require_tool
from support.api import seed
from tests_helpers import free_tcp_port

pytestmark = pytest.mark.slow
PASSWORD = "a long password!"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--window-size=1280,900")


@pytest.fixture
def server(sqlite_url: str, tmp_path: Path) -> Iterator[str]:
    """The API process's app (with the console) under uvicorn on a free loopback port."""
    seed(sqlite_url)
    key = tmp_path / "server.key"
    key.write_bytes(private_pem(Ed25519PrivateKey.generate()))
    key.chmod(0o600)
    app = create_app(sqlite_url, signing_key_file=key)
    port = free_tcp_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            lifespan="off")
    runner = uvicorn.Server(config)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not runner.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    runner.should_exit = True
    thread.join(10)
    app.state.engine.dispose()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    yield from chrome(tmp_path, javascript=True)


@pytest.fixture
def browser_without_js(tmp_path: Path) -> Iterator[Any]:
    yield from chrome(tmp_path, javascript=False)


def chrome(tmp_path: Path, javascript: bool) -> Iterator[Any]:
    """Headless Chromium (JavaScript off: the content setting every site gets)."""
    chromium, driver_path = require_tool("chromium"), require_tool("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing_service("selenium is not installed (pip install -e .[test])")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads), "download.prompt_for_download": False,
        **({} if javascript else {"profile.managed_default_content_settings.javascript": 2})})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium fetch a driver
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.execute_cdp_cmd("Page.setDownloadBehavior",
                           {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()


class Walk:
    """The browser, the base URL, and where screenshots go."""

    def __init__(self, driver: Any, base: str, shots: Path) -> None:
        self.driver, self.base, self.shots = driver, base, shots
        self.console: list[dict[str, Any]] = []
        self.requests: list[str] = []

    def css(self, selector: str) -> Any:
        return self.driver.find_element("css selector", selector)

    def all(self, selector: str) -> list[Any]:
        return self.driver.find_elements("css selector", selector)

    def link(self, text: str) -> None:
        self.driver.find_element("link text", text).click()

    def shot(self, name: str) -> None:
        self.driver.save_screenshot(str(self.shots / f"console-{name}.png"))

    def drain_logs(self) -> None:
        self.console += [e for e in self.driver.get_log("browser")
                         if e["level"] in ("SEVERE", "WARNING")]
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                self.requests.append(message["params"]["request"]["url"])

    def sign_in(self, user: str) -> None:
        self.driver.delete_all_cookies()
        self.driver.get(self.base + "/console/")
        assert self.driver.current_url.endswith("/console/login")
        self.css("#username").send_keys(user)
        self.css("#password").send_keys(PASSWORD)
        self.css("form button[type=submit]").click()
        self.wait_url("/console/sites")

    def wait_url(self, end: str) -> None:
        deadline = time.monotonic() + 15
        while not self.driver.current_url.split("?")[0].endswith(end):
            assert time.monotonic() < deadline, (self.driver.current_url,
                                                 self.driver.get_log("browser"),
                                                 self.driver.get_cookies())
            time.sleep(0.05)

    def wait_js(self, script: str, expected: Any) -> None:
        deadline = time.monotonic() + 15
        while (found := self.driver.execute_script(script)) != expected:
            assert time.monotonic() < deadline, (script, found, self.driver.current_url)
            time.sleep(0.05)

    def requirement(self, rid: str) -> str:
        return self.css(f"#req-{rid.replace(' ', '-').replace('.', '-')} .st").text


def test_console_in_chromium(server: str, browser: Any, tmp_path: Path) -> None:
    shots = Path(os.environ.get("OTAUDIT_CONSOLE_SHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    walk = Walk(browser, server, shots)
    # sign in as auditor: sites -> zone -> asset -> evidence
    walk.sign_in("auditor-plant-a")
    assert walk.css("h1").text == "Sites"
    assert "plant-b" not in browser.page_source
    walk.shot("sites")
    walk.link("cell-1")
    assert walk.css("h1").text == "Zone cell-1"
    assert len(walk.all("svg.chart")) == 1
    assert walk.requirement("SR 1.1") == "capability gap"
    sl_a_before = walk.css("#sl-a-proven").text
    assert walk.css("#sl-a-reachable").text.startswith("IAC 0 · UC 0")
    walk.shot("zone")
    walk.link("plc-1")
    assert walk.css("h1").text == "Asset plc-1"
    evidence = walk.css("#facts details.evidence")
    excerpt = evidence.find_element("css selector", "pre.excerpt")
    assert not excerpt.is_displayed()
    evidence.find_element("css selector", "summary").click()
    assert excerpt.is_displayed() and excerpt.text
    walk.shot("asset")
    # findings: htmx (vendored, from this origin) loaded; a changed filter replaces the
    # results and the address without a page load (the marker survives)
    walk.link("Findings")
    walk.wait_js("return window.htmx && htmx.version", "2.0.11")
    total = int(walk.css("#count").text.split()[0])
    from selenium.webdriver.support.ui import Select

    browser.execute_script("window.stayed = true")  # gone with the next full page load
    Select(walk.css("#f-outcome")).select_by_value("capability_gap")
    walk.wait_js("return location.search.includes('outcome=capability_gap') && "
                 "Number(document.getElementById('count').textContent.split(' ')[0])"
                 f" < {total}", True)
    assert browser.execute_script("return window.stayed") is True
    gaps = int(walk.css("#count").text.split()[0])
    assert 0 < gaps == len(walk.all("#findings tbody tr"))
    # the Filter button still submits the whole form (a page load)
    walk.css("#f-asset").send_keys("plc-1")
    walk.css("form.filters button[type=submit]:not([name])").click()
    walk.wait_js("return !window.stayed && location.search.includes('asset=plc-1')", True)
    rows = walk.all("#findings tbody tr")
    assert 0 < len(rows) == int(walk.css("#count").text.split()[0]) < total
    assert all("capability gap" in r.text and "plc-1" in r.text for r in rows)
    # the auditor records an exception: the zone's requirement outcome changes
    walk.link("Risk register")
    for field, value in (("#x-id", "GW-1"), ("#x-check", "OTA-MB-001"), ("#x-zone", "cell-1"),
                         ("#x-control", "read-only gateway in front of the PLCs"),
                         ("#x-justification", "function codes filtered by the gateway"),
                         ("#x-owner", "OT lead")):
        walk.css(field).send_keys(value)
    browser.execute_script("arguments[0].value = '2099-01-01'", walk.css("#x-expires"))
    browser.execute_script("window.stayed = true")
    walk.css("#new-exception button[type=submit]").click()
    walk.wait_url("/console/sites/plant-a/risks")
    while not walk.all("#exceptions"):
        assert "was not saved" not in browser.page_source, browser.page_source
        time.sleep(0.05)
    assert "GW-1" in walk.css("#exceptions").text
    assert browser.execute_script("return window.stayed") is True  # answered in place (htmx)
    walk.shot("risks")
    browser.get(server + "/console/sites/plant-a/zones/cell-1")
    assert walk.requirement("SR 1.1") == "compensated"
    assert "GW-1" in walk.css("#req-SR-1-1").text
    # the IAC/UC requirements the check decided count as met: reachable SL-A rises to 4;
    # proven SL-A stays (the zone's other requirements are still unknown)
    assert walk.css("#sl-a-reachable").text.startswith("IAC 4 · UC 4")
    assert walk.css("#sl-a-proven").text == sl_a_before
    # the evidence package downloads (auditor)
    walk.link("Exports")
    walk.css("#evidence-link").click()
    deadline = time.monotonic() + 30
    while not (zips := list(browser.downloads.glob("evidence-plant-a.zip"))):
        assert time.monotonic() < deadline, list(browser.downloads.iterdir())
        time.sleep(0.2)
    with zipfile.ZipFile(zips[0]) as package:
        names = package.namelist()
    assert any(n.endswith(".sig") or "signature" in n for n in names), names
    walk.drain_logs()
    # the viewer reads the register, has no form, and a forged POST is refused
    walk.sign_in("viewer-plant-a")
    browser.get(server + "/console/sites/plant-a/risks")
    assert "GW-1" in browser.page_source and not walk.all("#new-exception")
    browser.execute_script(
        "const f = document.createElement('form'); f.method = 'post'; f.action = "
        "'/console/sites/plant-a/risks'; for (const [k, v] of [['csrf', document.querySelector("
        "'input[name=csrf]').value], ['id', 'V-1'], ['check', 'OTA-MB-001'], "
        "['justification', 'viewer tries'], ['owner', 'viewer'], ['expires', '2099-01-01'], "
        "['control', 'none']]) { const i = document.createElement('input'); i.type = 'hidden';"
        " i.name = k; i.value = v; f.appendChild(i); } document.body.appendChild(f); f.submit();")
    deadline = time.monotonic() + 10
    while walk.css("h1").text != "Not allowed":
        assert time.monotonic() < deadline, browser.page_source[:500]
        time.sleep(0.1)
    assert "auditor" in walk.css(".error").text
    browser.get(server + "/console/sites/plant-a/risks")
    assert "V-1" not in browser.page_source
    walk.drain_logs()
    # keyboard: the first Tab lands on the skip link
    from selenium.webdriver.common.keys import Keys

    walk.css("body").send_keys(Keys.TAB)
    assert browser.switch_to.active_element.get_attribute("href").endswith("#main")
    # the 403 of the forged POST is logged by Chromium as a failed resource: not an error
    errors = [e for e in walk.console if "403" not in e["message"]]
    assert errors == [], errors
    # data: URLs (Chromium's own widget icons) never touch the network
    left = [u for u in walk.requests if not u.startswith((server + "/", "data:"))]
    assert walk.requests and left == [], left
    copy_to = os.environ.get("OTAUDIT_CONSOLE_DOCS")
    if copy_to:  # a maintainer refreshes docs/ with OTAUDIT_CONSOLE_DOCS=docs
        for name in ("sites", "zone", "asset", "risks"):
            shutil.copy(shots / f"console-{name}.png", Path(copy_to) / f"console-{name}.png")


def test_console_without_javascript(server: str, browser_without_js: Any,
                                    tmp_path: Path) -> None:
    """JavaScript off: htmx never runs, the forms still filter findings and record an
    exception (plain GET and POST), and nothing fails or leaves 127.0.0.1."""
    browser = browser_without_js
    walk = Walk(browser, server, tmp_path)
    walk.sign_in("auditor-plant-a")
    assert "c-plant-a" in walk.css("table.collectors").text  # the overview's collectors
    walk.link("Findings")
    # the page's script never ran (WebDriver's own evaluation still works)
    assert browser.execute_script("return typeof window.htmx") == "undefined"
    total = int(walk.css("#count").text.split()[0])
    from selenium.webdriver.support.ui import Select

    Select(walk.css("#f-outcome")).select_by_value("capability_gap")
    assert int(walk.css("#count").text.split()[0]) == total  # nothing happens on change
    walk.css("form.filters button[type=submit]:not([name])").click()
    deadline = time.monotonic() + 15
    while "outcome=capability_gap" not in browser.current_url:
        assert time.monotonic() < deadline, browser.current_url
        time.sleep(0.05)
    assert 0 < int(walk.css("#count").text.split()[0]) < total
    walk.link("Risk register")
    for field, value in (("#x-id", "NOJS-1"), ("#x-check", "OTA-MB-001"),
                         ("#x-zone", "cell-1"), ("#x-control", "read-only gateway"),
                         ("#x-justification", "function codes filtered"),
                         ("#x-owner", "OT lead"), ("#x-expires", "01012099")):
        walk.css(field).send_keys(value)
    walk.css("#new-exception button[type=submit]").click()
    deadline = time.monotonic() + 15
    while not walk.all("#exceptions"):
        assert "was not saved" not in browser.page_source, browser.page_source
        assert time.monotonic() < deadline, browser.page_source[:500]
        time.sleep(0.05)
    assert "NOJS-1" in walk.css("#exceptions").text
    walk.drain_logs()
    assert walk.console == [], walk.console
    left = [u for u in walk.requests if not u.startswith((server + "/", "data:"))]
    assert walk.requests and left == [], left
