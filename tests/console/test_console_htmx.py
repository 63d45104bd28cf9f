"""The vendored htmx: served from the app as recorded (digest, version, licence beside it),
and only an addition: every enhanced form is a plain HTML form without JavaScript, and an
htmx request gets the same answer as the plain one."""

from __future__ import annotations

import hashlib
import re
from importlib.resources import files

from test_console_pages import C, csrf_of, exception_form, login

from support.api import Api

VENDOR = files("otaudit.server.console").joinpath("static/vendor/htmx")
HX = {"HX-Request": "true", "HX-Current-URL": "http://testserver/console/"}


def test_htmx_is_served_as_recorded_with_its_licence(api: Api) -> None:
    readme = VENDOR.joinpath("README.md").read_text()
    served = api.client.get(f"{C}/static/htmx.min.js")
    assert served.status_code == 200
    assert served.headers["content-type"].startswith("text/javascript")
    digest = hashlib.sha256(served.content).hexdigest()
    assert digest == hashlib.sha256(VENDOR.joinpath("htmx.min.js").read_bytes()).hexdigest()
    assert f"`{digest}`" in readme  # the README's sha256 is the file's
    version = re.search(rb'version:"([0-9.]+)"', served.content).group(1).decode()
    assert f"version **{version}**" in readme and version.startswith("2.")
    assert "Zero-Clause BSD" in VENDOR.joinpath("LICENSE").read_text()
    assert "0BSD" in readme and "npm" in readme


def test_enhanced_forms_are_plain_forms_without_javascript(api: Api) -> None:
    client = login(api, "auditor-plant-a")
    findings = client.get(f"{C}/sites/plant-a/findings").text
    form = re.search(r'<form method="get" class="filters" action="([^"]+)"[^>]*>', findings)
    assert form and form.group(1) == "/console/sites/plant-a/findings"
    assert 'hx-get="/console/sites/plant-a/findings"' in form.group(0)
    assert '<button type="submit">Filter</button>' in findings  # submits without JS
    assert '<div id="results"' in findings  # what htmx swaps holds count and table
    register = client.get(f"{C}/sites/plant-a/risks").text
    new = re.search(r'<form method="post" action="([^"]+)" class="stack" id="new-exception"'
                    r'[^>]*>', register)
    assert new and new.group(1) == "/console/sites/plant-a/risks"
    assert 'hx-post="/console/sites/plant-a/risks"' in new.group(0)


def test_an_htmx_request_gets_the_answer_of_the_plain_one(api: Api) -> None:
    client = login(api, "auditor-plant-a")
    url = f"{C}/sites/plant-a/findings"
    params = {"outcome": "capability_gap", "asset": "plc-1"}
    plain, enhanced = client.get(url, params=params), client.get(url, params=params, headers=HX)
    results = lambda text: re.search(r'<div id="results".*?</table>', text, re.S).group(0)  # noqa: E731
    assert results(plain.text) == results(enhanced.text)
    csrf = csrf_of(client, f"{C}/sites/plant-a/risks")
    bad = client.post(f"{C}/sites/plant-a/risks", data=exception_form(csrf, check="NOPE-1"),
                      headers=HX)
    assert bad.status_code == 422 and "was not saved" in bad.text and "<main" in bad.text
    made = client.post(f"{C}/sites/plant-a/risks", data=exception_form(csrf), headers=HX)
    assert made.status_code == 200 and 'id="exceptions"' in made.text  # after the 303
