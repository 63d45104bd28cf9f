"""Every route of the app × role {none, viewer, auditor, admin} × {own site, other site}:
allowed answers 2xx, denied 401 (no token) or 403 (no role there). A route missing from
MATRIX fails the test, so a new route comes with its rule."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.routing import APIRoute
from starlette.routing import Mount, Route

from otaudit.server.api.security import LoginLimiter
from otaudit.server.db import make_engine, session_factory
from otaudit.server.services import accounts
from otaudit.signing import private_pem

from support.api import Api

Request = Callable[[Api, str], tuple[dict[str, Any], Any]]  # -> path params, JSON body
PUBLIC, ANY = "public", "any"  # no token needed; any valid token
EXCEPTION = {"type": "accepted_risk", "scope": {"checks": ["OTA-MB-001"]},
             "justification": "accepted until the migration", "owner": "OT lead",
             "expires": "2099-01-01"}
ATTESTATION = {"requirement": "SR 1.1", "status": "not_met", "attested_by": {"name": "Ann"},
               "valid_until": "2099-01-01"}


def _none(api: Api, site: str) -> tuple[dict[str, Any], Any]:
    return {}, None


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _token_of(api: Api, site: str) -> tuple[dict[str, Any], Any]:
    engine = make_engine(api.url)
    with session_factory(engine).begin() as session:
        token_id, _ = accounts.create_token(session, f"viewer-{site}", site, "viewer",
                                            timedelta(hours=1), "test")
    engine.dispose()
    return {"token_id": token_id}, None


def _waiver(api: Api, site: str, kind: str) -> tuple[dict[str, Any], Any]:
    record = {**(EXCEPTION if kind == "exception" else ATTESTATION), "id": _unique("W")}
    return {}, {"record": record}


def _expire(api: Api, site: str, kind: str) -> tuple[dict[str, Any], Any]:
    _, body = _waiver(api, site, kind)
    made = api.client.post(f"/api/v1/sites/{site}/{kind}s", json=body,
                           headers=api.auth(site, "auditor"))
    assert made.status_code == 201, made.text
    return {"record_id": body["record"]["id"]}, None


MATRIX: dict[tuple[str, str], tuple[str, Request]] = {
    ("POST", "/api/v1/login"): (PUBLIC, lambda api, site: (
        {}, {"username": "viewer-plant-a", "password": "a long password!"})),
    ("GET", "/api/v1/openapi.json"): (ANY, _none),
    ("GET", "/api/v1/sites"): (ANY, _none),
    **{("GET", f"/api/v1/sites/{{site}}/{p}"): ("viewer", _none)
       for p in ("zones", "gap", "requirements", "assets", "observations", "findings",
                 "patch-status", "advisories", "exceptions", "attestations", "drift")},
    ("GET", "/api/v1/sites/{site}/assets/{asset_id}"): (
        "viewer", lambda api, site: ({"asset_id": "plc-1"}, None)),
    **{("POST", f"/api/v1/sites/{{site}}/{k}s"): (
        "auditor", lambda api, site, k=k: _waiver(api, site, k)) for k in ("exception",
                                                                            "attestation")},
    **{("POST", f"/api/v1/sites/{{site}}/{k}s/{{record_id}}/expire"): (
        "auditor", lambda api, site, k=k: _expire(api, site, k)) for k in ("exception",
                                                                           "attestation")},
    ("GET", "/api/v1/sites/{site}/report"): ("auditor", _none),
    ("GET", "/api/v1/sites/{site}/evidence"): ("auditor", _none),
    ("GET", "/api/v1/sites/{site}/users"): ("admin", _none),
    ("POST", "/api/v1/sites/{site}/users"): ("admin", lambda api, site: (
        {}, {"name": _unique("u"), "password": "another long password", "role": "viewer"})),
    ("PUT", "/api/v1/sites/{site}/users/{name}"): ("admin", lambda api, site: (
        {"name": f"viewer-{site}"}, {"role": "viewer"})),
    ("POST", "/api/v1/sites/{site}/tokens"): ("admin", lambda api, site: (
        {}, {"user": f"auditor-{site}", "role": "viewer", "expires_days": 1})),
    ("DELETE", "/api/v1/sites/{site}/tokens/{token_id}"): ("admin", _token_of),
    ("GET", "/api/v1/sites/{site}/audit-trail"): ("admin", _none),
}
ORDER = ("viewer", "auditor", "admin")


def routes(app: Any) -> list[tuple[str, str]]:
    return sorted((method, r.path) for r in app.routes if isinstance(r, APIRoute)
                  for method in r.methods if r.path != "/healthz")


def allowed(rule: str, role: str | None, own: bool, path: str) -> bool:
    if rule == PUBLIC:
        return True
    if role is None:
        return False
    if rule == ANY:
        return True
    return (own or "{site}" not in path) and ORDER.index(role) >= ORDER.index(rule)


def test_every_route_has_a_rule(api: Api) -> None:
    listed = routes(api.client.app)
    missing = [r for r in listed if r not in MATRIX]
    assert not missing, f"routes without a role-matrix entry (add them to MATRIX): {missing}"
    assert not [r for r in MATRIX if r not in listed], "MATRIX names routes that do not exist"
    assert len(listed) >= 25


def test_role_matrix(api: Api, tmp_path: Path) -> None:
    key = tmp_path / "server.key"
    key.write_bytes(private_pem(Ed25519PrivateKey.generate()))
    key.chmod(0o600)
    api.client.app.state.signing_key_file = key
    api.client.app.state.login_limiter = LoginLimiter(attempts=1000)
    wrong = []
    for (method, path), role, own in itertools.product(
            routes(api.client.app), (None, *ORDER), (True, False)):
        rule, make = MATRIX[method, path]
        site = "plant-a" if own else "plant-b"
        params, body = make(api, site)
        url = path.format(site=site, **params)
        headers = api.auth("plant-a", role) if role else {}
        response = api.client.request(method, url, json=body, headers=headers)
        expected = allowed(rule, role, own, path)
        ok = 200 <= response.status_code < 300 if expected else \
            response.status_code == (401 if role is None else 403)
        if not ok:
            wrong.append(f"{method} {url} as {role or 'none'} of plant-a: "
                         f"{response.status_code} {response.text[:120]}")
    assert not wrong, "\n".join(wrong)


def test_every_write_is_in_the_audit_trail(api: Api) -> None:
    """Each allowed POST/PUT/DELETE of the matrix leaves one entry naming its actor."""
    api.client.app.state.login_limiter = LoginLimiter(attempts=1000)
    trail = "/api/v1/sites/plant-a/audit-trail"
    admin = api.auth("plant-a", "admin")
    for (method, path), (rule, make) in sorted(MATRIX.items()):
        if method == "GET":
            continue
        params, body = make(api, "plant-a")
        role = "admin" if rule in ("admin", PUBLIC) else "auditor"
        before = api.client.get(trail, params={"limit": 500}, headers=admin).json()["total"]
        response = api.client.request(method, path.format(site="plant-a", **params),
                                      json=body, headers=api.auth("plant-a", role))
        assert response.status_code < 300, (method, path, response.text)
        if path == "/api/v1/login":
            continue  # a login token has no site: it is in the trail without one (below)
        entries = api.client.get(trail, params={"limit": 500}, headers=admin).json()["items"]
        assert len(entries) > before, (method, path)
        assert entries[-1]["actor"] == f"{role}-plant-a", (method, path, entries[-1])
    engine = make_engine(api.url)
    from otaudit.server.services import audit

    with session_factory(engine)() as session:
        logins = [e for e in audit.trail(session) if e["action"] == "login"]
    engine.dispose()
    assert logins and logins[-1]["actor"] == "viewer-plant-a"


def test_the_console_mount_is_covered_by_its_own_matrix(api: Api) -> None:
    """``routes`` lists the API; the only mount is the console, whose every route has a rule
    in tests/console/test_console_pages.py (RULES, checked there per role and site)."""
    import importlib.util

    mounts = {r.path: r.app for r in api.client.app.routes if isinstance(r, Mount)}
    assert list(mounts) == ["/console"], "a new mount needs a role matrix"
    path = Path(__file__).parents[1] / "console" / "test_console_pages.py"
    spec = importlib.util.spec_from_file_location("console_matrix", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    listed = {(m, r.path) for r in mounts["/console"].routes if isinstance(r, Route)
              for m in (r.methods or ()) - {"HEAD"}}
    assert listed == set(module.RULES)


@pytest.mark.parametrize("role", ORDER)
def test_a_token_never_reaches_a_site_it_is_not_for(api: Api, role: str) -> None:
    response = api.client.get("/api/v1/sites/plant-b/assets", headers=api.auth("plant-a", role))
    assert response.status_code == 403
