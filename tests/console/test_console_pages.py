"""The console through TestClient: login cookie, roles per site, CSRF on every POST, CSP,
the pages' content, and a role matrix over every console route (the API's matrix covers
the API; this one the mounted console)."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.routing import Mount, Route

from otaudit.server.api.security import LoginLimiter

from support.api import Api

PASSWORD = "a long password!"
C = "/console"


def login(api: Api, user: str) -> TestClient:
    """A fresh client (its own cookie jar) signed in as ``user``."""
    client = TestClient(api.client.app, base_url="http://testserver")
    response = client.post(f"{C}/login", data={"username": user, "password": PASSWORD},
                           follow_redirects=False)
    assert response.status_code == 303, response.text
    return client


def csrf_of(client: TestClient, url: str) -> str:
    page = client.get(url)
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert found, "no CSRF field on the page"
    return found.group(1)


def exception_form(csrf: str, record_id: str = "X-1", **extra: str) -> dict[str, str]:
    return {"csrf": csrf, "id": record_id, "type": "compensating_control",
            "check": "OTA-MB-001", "zone": "cell-1", "justification": "gateway filters FC",
            "owner": "OT lead", "expires": "2099-01-01", "control": "read-only gateway",
            **extra}


def test_login_sets_a_strict_httponly_cookie_and_wrong_password_is_refused(api: Api) -> None:
    client = TestClient(api.client.app)
    assert client.get(f"{C}/sites", follow_redirects=False).headers["location"] \
        .endswith("/console/login")
    wrong = client.post(f"{C}/login", data={"username": "viewer-plant-a", "password": "nope"})
    assert wrong.status_code == 401 and "Wrong user name or password" in wrong.text
    assert "otaudit_console" not in client.cookies
    ok = client.post(f"{C}/login", data={"username": "viewer-plant-a", "password": PASSWORD},
                     follow_redirects=False)
    cookie = ok.headers["set-cookie"]
    assert ok.status_code == 303 and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Path=/console" in cookie and "Secure" not in cookie  # plain HTTP in the test
    https = TestClient(api.client.app, base_url="https://testserver").post(
        f"{C}/login", data={"username": "viewer-plant-a", "password": PASSWORD},
        follow_redirects=False)
    assert "Secure" in https.headers["set-cookie"]
    page = client.get(f"{C}/sites")
    assert page.status_code == 200 and "plant-a" in page.text and "plant-b" not in page.text


def test_login_is_rate_limited(api: Api) -> None:
    api.client.app.state.login_limiter = LoginLimiter(attempts=2)
    client = TestClient(api.client.app)
    codes = [client.post(f"{C}/login", data={"username": "admin-plant-a", "password": "x"})
             .status_code for _ in range(3)]
    assert codes == [401, 401, 429]


def test_logout_revokes_the_session(api: Api) -> None:
    client = login(api, "viewer-plant-a")
    token = client.cookies["otaudit_console"]
    csrf = csrf_of(client, f"{C}/sites")
    assert client.post(f"{C}/logout", data={"csrf": "0"}).status_code == 403
    assert client.post(f"{C}/logout", data={"csrf": csrf}, follow_redirects=False) \
        .status_code == 303
    replay = TestClient(api.client.app, cookies={"otaudit_console": token})
    assert replay.get(f"{C}/sites", follow_redirects=False).status_code == 303


def test_headers_csp_and_no_external_reference(api: Api) -> None:
    client = login(api, "auditor-plant-a")
    for url in ("/sites", "/sites/plant-a/zones/cell-1", "/sites/plant-a/assets/plc-1",
                "/sites/plant-a/findings", "/sites/plant-a/patches", "/sites/plant-a/risks",
                "/sites/plant-a/exports", "/login"):
        page = client.get(C + url)
        assert page.status_code == 200, (url, page.text)
        csp = page.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["cache-control"] == "no-store"
        refs = re.findall(r'(?:src|href|action)="([^"]*)"', page.text)
        assert refs and all(r.startswith(("/console", "#")) or r == "data:,"
                            for r in refs), (url, refs)
        # one script: the vendored htmx from this origin; no inline script or handler
        assert re.findall(r"<script[^>]*>", page.text) == [
            '<script src="/console/static/htmx.min.js" defer>']
        assert "</script>" in page.text and not re.search(r"<script[^>]*>[^<]", page.text)
        assert not re.search(r"\son[a-z]+=", page.text)
        assert "unsafe" not in csp
        # basics of access: a skip link, every input/select/textarea labelled
        assert 'href="#main"' in page.text
        ids = set(re.findall(r'<label for="([^"]+)"', page.text))
        fields = re.findall(r'<(?:input|select|textarea)(?![^>]*type="hidden")[^>]*>', page.text)
        for field in fields:
            field_id = re.search(r'id="([^"]+)"', field)
            assert field_id and field_id.group(1) in ids, (url, field)


def test_pages_walk_zone_asset_and_evidence(api: Api) -> None:
    client = login(api, "viewer-plant-a")
    zone = client.get(f"{C}/sites/plant-a/zones/cell-1").text
    assert "SL-A proven" in zone and '<svg' in zone and "SR 1.1" in zone
    assert "/console/sites/plant-a/assets/plc-1" in zone
    asset = client.get(f"{C}/sites/plant-a/assets/plc-1").text
    assert "Schneider Electric" in asset and '<details class="evidence">' in asset
    assert "OTA-MB-001" in asset
    assert client.get(f"{C}/sites/plant-a/assets/nope").status_code == 404
    assert client.get(f"{C}/sites/plant-a/zones/nope").status_code == 404
    # another site's pages: 403, even with the same asset id there
    assert client.get(f"{C}/sites/plant-b/assets/plc-1").status_code == 403


def test_findings_filters_and_csv(api: Api) -> None:
    client = login(api, "viewer-plant-a")
    url = f"{C}/sites/plant-a/findings"
    every = client.get(url).text
    gaps = client.get(url, params={"outcome": "capability_gap", "asset": "plc-2"}).text
    count = lambda text: int(re.search(r'<p id="count">(\d+)', text).group(1))  # noqa: E731
    assert 0 < count(gaps) < count(every)
    assert 'value="capability_gap" selected' in gaps
    none = client.get(url, params={"zone": "cell-9"}).text
    assert count(none) == 0 and "clear a filter" in none
    download = client.get(url, params={"outcome": "capability_gap", "format": "csv"})
    assert download.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert rows and {r["outcome"] for r in rows} == {"capability_gap"}
    assert {r["asset_id"] for r in rows} == {"plc-1", "plc-2"}


def test_findings_pages_keep_the_filters(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from otaudit.server.console import pages

    client = login(api, "viewer-plant-a")
    url = f"{C}/sites/plant-a/findings"
    every = client.get(url).text
    total = int(re.search(r'<p id="count">(\d+)', every).group(1))
    monkeypatch.setattr(pages, "PAGE_ROWS", 2)
    seen, link = [], url + "?asset=plc-1"
    while link:
        page = client.get(link).text
        seen += re.findall(r'<tr><th scope="row"><a[^>]*>(plc-\d)</a></th><td>[^<]*</td>'
                           r'<td>([^<]*)</td>', page)
        found = re.search(r'rel="next" href="([^"]+)"', page)
        link = found.group(1).replace("&amp;", "&") if found else None
        assert link is None or "asset=plc-1" in link
    assert len(seen) == len(set(seen)) and {a for a, _ in seen} == {"plc-1"}
    assert 2 < len(seen) < total
    last = client.get(url, params={"asset": "plc-1", "page": 999}).text
    assert 'rel="prev"' in last and 'rel="next"' not in last


def test_auditor_creates_and_expires_an_exception_and_it_changes_the_outcome(api: Api) -> None:
    client = login(api, "auditor-plant-a")
    before = client.get(f"{C}/sites/plant-a/findings",
                        params={"check": "OTA-MB-001", "format": "csv"}).text
    assert "capability_gap" in before and "compensated" not in before
    csrf = csrf_of(client, f"{C}/sites/plant-a/risks")
    bad = client.post(f"{C}/sites/plant-a/risks", data=exception_form(csrf, check="NOPE-1"))
    assert bad.status_code == 422 and "was not saved" in bad.text
    made = client.post(f"{C}/sites/plant-a/risks", data=exception_form(csrf),
                       follow_redirects=False)
    assert made.status_code == 303, made.text
    again = client.post(f"{C}/sites/plant-a/risks", data=exception_form(csrf))
    assert again.status_code == 422 and "exists" in again.text
    after = client.get(f"{C}/sites/plant-a/findings",
                       params={"check": "OTA-MB-001", "format": "csv"}).text
    assert "compensated" in after and "capability_gap" not in after
    register = client.get(f"{C}/sites/plant-a/risks").text
    assert "X-1" in register and "Expire now" in register
    zone = client.get(f"{C}/sites/plant-a/zones/cell-1").text
    assert "X-1" in zone
    reachable = re.search(r'id="sl-a-reachable">([^<]*)', zone).group(1)
    assert reachable.startswith("IAC 4 · UC 4"), reachable  # was IAC 0 · UC 0
    assert re.search(r'id="req-SR-1-1">.*?st-compensated', zone, re.S)
    expired = client.post(f"{C}/sites/plant-a/risks/X-1/expire", data={"csrf": csrf},
                          follow_redirects=False)
    assert expired.status_code == 303
    assert "capability_gap" in client.get(f"{C}/sites/plant-a/findings", params={
        "check": "OTA-MB-001", "format": "csv"}).text
    trail = api.client.get("/api/v1/sites/plant-a/audit-trail",
                           headers=api.auth("plant-a", "admin")).json()["items"]
    assert [e["action"] for e in trail[-2:]] == ["exception.create", "exception.expire"]
    assert trail[-1]["actor"] == "auditor-plant-a"


def test_viewer_sees_no_form_and_is_refused_and_csrf_is_required(api: Api) -> None:
    viewer = login(api, "viewer-plant-a")
    register = viewer.get(f"{C}/sites/plant-a/risks").text
    assert 'id="new-exception"' not in register and "needs the auditor role" in register
    csrf = csrf_of(viewer, f"{C}/sites/plant-a/risks")  # the sign-out form's token
    refused = viewer.post(f"{C}/sites/plant-a/risks", data=exception_form(csrf))
    assert refused.status_code == 403 and "auditor" in refused.text
    auditor = login(api, "auditor-plant-a")
    good = csrf_of(auditor, f"{C}/sites/plant-a/risks")
    for form in ({**exception_form(good), "csrf": ""}, exception_form(csrf)):  # none, other's
        assert auditor.post(f"{C}/sites/plant-a/risks", data=form).status_code == 403
    other_site = auditor.post(f"{C}/sites/plant-b/risks", data=exception_form(good))
    assert other_site.status_code == 403
    assert api.client.get("/api/v1/sites/plant-a/exceptions",
                          headers=api.auth("plant-a", "viewer")).json()["items"] == []


def test_exports_need_auditor(api: Api) -> None:
    viewer = login(api, "viewer-plant-a")
    assert "Exports need the auditor role" in viewer.get(f"{C}/sites/plant-a/exports").text
    assert viewer.get(f"{C}/sites/plant-a/exports/report.html").status_code == 403
    auditor = login(api, "auditor-plant-a")
    report = auditor.get(f"{C}/sites/plant-a/exports/report.html")
    assert report.status_code == 200 and "gap report" in report.text
    assert "attachment" in report.headers["content-disposition"]
    # no signing key configured: the page says what to do, the link answers 409
    assert "OTAUDIT_SERVER_SIGNING_KEY_FILE" in auditor.get(f"{C}/sites/plant-a/exports").text
    assert auditor.get(f"{C}/sites/plant-a/exports/evidence.zip").status_code == 409


# -- the console's role matrix ----------------------------------------------------------

RULES: dict[tuple[str, str], str] = {  # (method, path) -> least role ("public", "login")
    ("GET", "/"): "login", ("GET", "/static/console.css"): "public",
    ("GET", "/static/htmx.min.js"): "public",
    ("GET", "/login"): "public", ("POST", "/login"): "public",
    ("POST", "/logout"): "login", ("GET", "/sites"): "login",
    **{("GET", f"/sites/{{site}}{p}"): "viewer"
       for p in ("/zones/{zone}", "/assets/{asset_id}", "/findings", "/patches", "/risks",
                 "/exports")},
    ("POST", "/sites/{site}/risks"): "auditor",
    ("POST", "/sites/{site}/risks/{record_id}/expire"): "auditor",
    ("GET", "/sites/{site}/exports/report.html"): "auditor",
    ("GET", "/sites/{site}/exports/evidence.zip"): "auditor",
}
ORDER = ("viewer", "auditor", "admin")


def console_routes(app: Any) -> list[tuple[str, str, Any]]:
    mounts = [r for r in app.routes if isinstance(r, Mount)]
    assert [m.path for m in mounts] == [C], "a new mount needs its own role matrix"
    return sorted((method, r.path, r) for r in mounts[0].app.routes if isinstance(r, Route)
                  for method in (r.methods or ()) - {"HEAD"})


def test_every_console_route_has_a_rule_and_its_dependency_says_the_same(api: Api) -> None:
    listed = console_routes(api.client.app)
    assert {(m, p) for m, p, _ in listed} == set(RULES)
    for method, path, route in listed:
        rule = RULES[method, path]
        if rule in ORDER:  # the route's dependency carries the role the matrix expects
            roles = {getattr(d.call, "role", None) for d in route.dependant.dependencies}
            assert rule in roles, (method, path, roles)


@pytest.mark.parametrize("role", (None, *ORDER))
def test_console_role_matrix(api: Api, role: str | None) -> None:
    """Every site route as each role of plant-a, on plant-a and plant-b."""
    api.client.app.state.login_limiter = LoginLimiter(attempts=1000)
    client = login(api, f"{role}-plant-a") if role else TestClient(api.client.app)
    csrf = csrf_of(client, f"{C}/sites/plant-a/findings") if role else ""
    wrong = []
    for n, ((method, path), rule) in enumerate(sorted(RULES.items())):
        if "{site}" not in path:
            continue
        for site in ("plant-a", "plant-b"):
            url = C + path.format(site=site, zone="cell-1", asset_id="plc-1",
                                  record_id=f"R-{n}")
            data = exception_form(csrf, f"R-{n}") if method == "POST" else None
            if "expire" in path and role in ("auditor", "admin") and site == "plant-a":
                assert client.post(C + f"/sites/{site}/risks",
                                   data=exception_form(csrf, f"R-{n}"),
                                   follow_redirects=False).status_code == 303
            response = client.request(method, url, data=data, follow_redirects=False)
            allowed = role is not None and site == "plant-a" and \
                ORDER.index(role) >= ORDER.index(rule)
            expected = (200, 303) if allowed else ((303,) if role is None else (403,))
            if "evidence" in path and allowed:
                expected = (409,)  # allowed, but this app has no signing key
            if response.status_code not in expected:
                wrong.append(f"{method} {url} as {role}: {response.status_code}")
    assert not wrong, "\n".join(wrong)
