"""The API over two sites that use the same asset id; pagination, ETags, headers, waivers."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from otaudit.cli.main import app

from support.api import Api


def test_two_sites_with_the_same_asset_id_stay_apart(api: Api) -> None:
    a = api.client.get("/api/v1/sites/plant-a/assets/plc-1", headers=api.auth("plant-a", "viewer"))
    b = api.client.get("/api/v1/sites/plant-b/assets/plc-1", headers=api.auth("plant-b", "viewer"))
    assert a.status_code == b.status_code == 200
    assert a.json()["facts"]["identity.vendor"]["value"] == "Schneider Electric"
    assert b.json()["facts"]["identity.vendor"]["value"] == "Siemens"
    assert a.json()["site"] == "plant-a" and b.json()["site"] == "plant-b"
    fact = a.json()["facts"]["identity.vendor"]
    assert fact["evidence"] == ["e1"]
    assert [e["id"] for e in a.json()["evidence"]] == ["e1"]
    assert a.json()["evidence"][0]["observation_id"] == fact["observation_id"]
    # plant-a's admin sees nothing of plant-b
    denied = api.client.get("/api/v1/sites/plant-b/assets/plc-1",
                            headers=api.auth("plant-a", "admin"))
    assert denied.status_code == 403
    findings_a = api.client.get("/api/v1/sites/plant-a/findings",
                                params={"asset": "plc-1", "check": "OTA-MB-001"},
                                headers=api.auth("plant-a", "viewer")).json()["items"]
    findings_b = api.client.get("/api/v1/sites/plant-b/findings",
                                params={"asset": "plc-1", "check": "OTA-MB-001"},
                                headers=api.auth("plant-b", "viewer")).json()["items"]
    assert [f["outcome"] for f in findings_a] == ["capability_gap"]
    assert [f["outcome"] for f in findings_b] == ["pass"]
    sites = api.client.get("/api/v1/sites", headers=api.auth("plant-a", "viewer")).json()
    assert [s["site"] for s in sites["items"]] == ["plant-a"]
    assert sites["items"][0]["assets"] == 2


def test_findings_filters(api: Api) -> None:
    get = api.client.get
    head = api.auth("plant-a", "viewer")
    every = get("/api/v1/sites/plant-a/findings", headers=head).json()["items"]
    assert {f["asset_id"] for f in every} == {"plc-1", "plc-2"}
    assert every == sorted(every, key=lambda f: (f["asset_id"], f["check_id"]))
    gaps = get("/api/v1/sites/plant-a/findings", params={"outcome": "capability_gap"},
               headers=head).json()["items"]
    assert gaps and all(f["outcome"] == "capability_gap" for f in gaps)
    assert len(gaps) < len(every)
    one = get("/api/v1/sites/plant-a/findings", params={"asset": "plc-2", "zone": "cell-1"},
              headers=head).json()["items"]
    assert one and {f["asset_id"] for f in one} == {"plc-2"}
    assert get("/api/v1/sites/plant-a/findings", params={"zone": "cell-9"},
               headers=head).json()["items"] == []


def test_pagination_is_bounded_and_stable(api: Api) -> None:
    head = api.auth("plant-a", "viewer")
    url = "/api/v1/sites/plant-a/findings"
    assert api.client.get(url, params={"limit": 501}, headers=head).status_code == 422
    assert api.client.get(url, params={"limit": 0}, headers=head).status_code == 422
    assert api.client.get(url, params={"offset": -1}, headers=head).status_code == 422
    whole = api.client.get(url, params={"limit": 500}, headers=head).json()
    pages, offset = [], 0
    while offset is not None:
        page = api.client.get(url, params={"limit": 2, "offset": offset}, headers=head).json()
        assert page["total"] == whole["total"] and len(page["items"]) <= 2
        pages += page["items"]
        offset = page["next_offset"]
    assert pages == whole["items"]
    assert whole["next_offset"] is None and whole["total"] == len(whole["items"]) > 2


def test_etag_and_if_none_match(api: Api) -> None:
    head = api.auth("plant-a", "viewer")
    first = api.client.get("/api/v1/sites/plant-a/assets", headers=head)
    etag = first.headers["ETag"]
    again = api.client.get("/api/v1/sites/plant-a/assets",
                           headers={**head, "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    other = api.client.get("/api/v1/sites/plant-a/assets",
                           headers={**head, "If-None-Match": '"something-else"'})
    assert other.status_code == 200 and other.json() == first.json()
    page2 = api.client.get("/api/v1/sites/plant-a/assets", params={"offset": 1},
                           headers={**head, "If-None-Match": etag})
    assert page2.status_code == 200 and page2.headers["ETag"] != etag


def test_security_headers(api: Api) -> None:
    health = api.client.get("/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    listed = api.client.get("/api/v1/sites/plant-a/assets", headers=api.auth("plant-a", "viewer"))
    for response in (health, listed):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert listed.headers["Cache-Control"] == "no-store"
    refused = api.client.get("/api/v1/sites/plant-a/assets")
    assert refused.status_code == 401 and refused.headers["Cache-Control"] == "no-store"
    assert refused.headers["WWW-Authenticate"] == "Bearer"


EXCEPTION = {"id": "EXC-1", "type": "compensating_control",
             "scope": {"zone": "cell-1", "checks": ["OTA-MB-001"]},
             "control": "conduit firewall lets only the SCADA master reach TCP/502",
             "justification": "Modbus has no authentication", "owner": "OT security lead",
             "expires": "2099-01-01"}


def _mb001(api: Api) -> list[str]:
    gap = api.client.get("/api/v1/sites/plant-a/gap", headers=api.auth("plant-a", "viewer"))
    return sorted({f["status"] for z in gap.json()["zones"] for g in z["failing"]
                   for f in g["findings"] if f["check_id"] == "OTA-MB-001"})


def _stored_mb001(api: Api) -> list[str]:
    found = api.client.get("/api/v1/sites/plant-a/findings", params={"check": "OTA-MB-001"},
                           headers=api.auth("plant-a", "viewer"))
    return [f["outcome"] for f in found.json()["items"]]


def test_an_exception_counts_in_the_gap_until_expired_and_every_write_is_audited(api: Api
                                                                               ) -> None:
    before = _mb001(api)
    assert before == ["capability_gap"]
    head = api.auth("plant-a", "auditor")
    made = api.client.post("/api/v1/sites/plant-a/exceptions", json={"record": EXCEPTION},
                           headers=head)
    assert made.status_code == 201, made.text
    assert made.json()["created_by"] == "auditor-plant-a"
    assert _mb001(api) == []  # compensated: the requirement no longer fails on it
    assert _stored_mb001(api) == ["compensated", "compensated"]  # plc-1 and plc-2
    report = api.client.get("/api/v1/sites/plant-a/report", headers=head)
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert "EXC-1" in report.text  # in the risk register and on the compensated findings
    assert report.headers["Content-Security-Policy"].startswith("default-src 'none'")
    cli = CliRunner().invoke(app, ["report", "--db", api.url, "--site", "plant-a",
                                   "--format", "json"])
    assert cli.exit_code == 0, cli.output
    assert "EXC-1" in {r["id"] for r in json.loads(cli.output)["risk_register"]}
    again = api.client.post("/api/v1/sites/plant-a/exceptions", json={"record": EXCEPTION},
                            headers=head)
    assert again.status_code == 409
    bad = api.client.post("/api/v1/sites/plant-a/exceptions",
                          json={"record": {**EXCEPTION, "id": "EXC-2",
                                           "scope": {"checks": ["OTA-NO-999"]}}}, headers=head)
    assert bad.status_code == 422 and "OTA-NO-999" in bad.text
    # plant-b does not see plant-a's exception
    listed_b = api.client.get("/api/v1/sites/plant-b/exceptions",
                              headers=api.auth("plant-b", "viewer")).json()
    assert listed_b["items"] == []
    expired = api.client.post("/api/v1/sites/plant-a/exceptions/EXC-1/expire", headers=head)
    assert expired.status_code == 200 and expired.json()["expired_by"] == "auditor-plant-a"
    assert _mb001(api) == before
    assert _stored_mb001(api) == ["capability_gap", "capability_gap"]
    missing = api.client.post("/api/v1/sites/plant-a/exceptions/EXC-9/expire", headers=head)
    assert missing.status_code == 404
    trail = api.client.get("/api/v1/sites/plant-a/audit-trail",
                           headers=api.auth("plant-a", "admin")).json()["items"]
    writes = [(t["actor"], t["action"], t["target"]) for t in trail
              if t["action"].startswith("exception")]
    assert writes == [("auditor-plant-a", "exception.create", "exception:EXC-1"),
                      ("auditor-plant-a", "exception.expire", "exception:EXC-1")]
    assert all(t["at"].endswith("+00:00") for t in trail)  # UTC, on SQLite too


@pytest.mark.parametrize("path", ["zones", "requirements"])
def test_zone_levels_match_the_gap(api: Api, path: str) -> None:
    head = api.auth("plant-a", "viewer")
    gap = api.client.get("/api/v1/sites/plant-a/gap", headers=head).json()["zones"]
    items = api.client.get(f"/api/v1/sites/plant-a/{path}", params={"limit": 500},
                           headers=head).json()["items"]
    if path == "zones":
        assert [(z["zone"], z["sl_t"], z["sl_a_proven"], z["sl_a_reachable"]) for z in items] \
            == [(z["zone"], z["sl_t"], z["sl_a"], z["sl_reachable"]) for z in gap]
    else:
        assert {r["id"] for r in items} == {r["id"] for z in gap for r in z["requirements"]}
        assert all(r["zone"] == "cell-1" for r in items)
