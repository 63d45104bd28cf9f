"""Login (rate-limited), tokens (hash only, expiry, revocation, capped by the user's role),
the OpenAPI document, and the gap: the CLI and the API print the same."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner

from otaudit.cli.main import app as cli
from otaudit.server.accounts import ApiTokenRow, AuditRow
from otaudit.server.db import make_engine, session_factory
from otaudit.server.services import accounts

from support.api import Api

LOGIN = "/api/v1/login"
REPO = Path(__file__).resolve().parents[2]


def test_login_gives_a_working_token_and_is_rate_limited(api: Api) -> None:
    good = {"username": "viewer-plant-a", "password": "a long password!"}
    response = api.client.post(LOGIN, json=good)
    assert response.status_code == 200
    token = response.json()["token"]
    listed = api.client.get("/api/v1/sites/plant-a/assets",
                            headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 200 and listed.json()["total"] == 2
    other = api.client.get("/api/v1/sites/plant-b/assets",
                           headers={"Authorization": f"Bearer {token}"})
    assert other.status_code == 403
    wrong = {"username": "viewer-plant-a", "password": "not the password"}
    codes = [api.client.post(LOGIN, json=wrong).status_code for _ in range(4)]
    assert codes == [401] * 4  # 5 attempts per minute: 1 good + 4 wrong
    limited = api.client.post(LOGIN, json=good)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    # another user from the same address is not limited by this one's attempts
    assert api.client.post(LOGIN, json={"username": "admin-plant-a",
                                        "password": "a long password!"}).status_code == 200
    assert api.client.post(LOGIN, json={"username": "nobody", "password": "x" * 12}
                           ).status_code == 401
    engine = make_engine(api.url)
    with session_factory(engine)() as session:
        failed = session.scalars(sa.select(AuditRow.actor)
                                 .where(AuditRow.action == "login.failed")).all()
    engine.dispose()
    assert failed == ["viewer-plant-a"] * 4 + ["nobody"]


def test_the_database_keeps_only_token_hashes_and_no_secret_in_the_trail(api: Api) -> None:
    token = api.tokens["plant-a", "viewer"]
    engine = make_engine(api.url)
    with session_factory(engine)() as session:
        hashes = session.scalars(sa.select(ApiTokenRow.token_hash)).all()
        trail = json.dumps([(r.actor, r.target, r.detail) for r in
                            session.scalars(sa.select(AuditRow))])
    engine.dispose()
    assert accounts.hash_token(token) in hashes
    assert token not in hashes and token not in trail
    assert "a long password!" not in trail


def test_revoked_expired_and_weakened_tokens(api: Api) -> None:
    engine = make_engine(api.url)
    with session_factory(engine).begin() as session:
        _, short = accounts.create_token(session, "admin-plant-a", "plant-a", "admin",
                                                timedelta(seconds=-1), "test")
        keep_id, keep = accounts.create_token(session, "admin-plant-a", "plant-a", "admin",
                                              timedelta(days=1), "test")
    url = "/api/v1/sites/plant-a/users"
    assert api.client.get(url, headers={"Authorization": f"Bearer {short}"}).status_code == 401
    assert api.client.get(url, headers={"Authorization": f"Bearer {keep}"}).status_code == 200
    # the user's role drops to viewer: the admin token now reads but cannot administer
    with session_factory(engine).begin() as session:
        accounts.grant(session, "admin-plant-a", "plant-a", "viewer", "test")
    assert api.client.get(url, headers={"Authorization": f"Bearer {keep}"}).status_code == 403
    assert api.client.get("/api/v1/sites/plant-a/assets",
                          headers={"Authorization": f"Bearer {keep}"}).status_code == 200
    revoked = api.client.delete(f"/api/v1/sites/plant-a/tokens/{keep_id}",
                                headers=api.auth("plant-a", "admin"))
    assert revoked.status_code == 403  # that admin is a viewer now
    with session_factory(engine).begin() as session:
        assert accounts.revoke_token(session, keep_id, "test")
    engine.dispose()
    assert api.client.get("/api/v1/sites/plant-a/assets",
                          headers={"Authorization": f"Bearer {keep}"}).status_code == 401
    for bad in ("Bearer ota_nope", "Bearer ", "Basic dXNlcjpwYXNz", "ota_x"):
        assert api.client.get("/api/v1/sites/plant-a/assets",
                              headers={"Authorization": bad}).status_code == 401


def test_revoking_a_token_of_another_site_is_not_found(api: Api) -> None:
    engine = make_engine(api.url)
    with session_factory(engine).begin() as session:
        token_id, _ = accounts.create_token(session, "viewer-plant-b", "plant-b", "viewer",
                                            timedelta(days=1), "test")
    engine.dispose()
    response = api.client.delete(f"/api/v1/sites/plant-a/tokens/{token_id}",
                                 headers=api.auth("plant-a", "admin"))
    assert response.status_code == 404


def test_openapi_document_is_served_and_checked_in(api: Api) -> None:
    from otaudit.server.api.openapi import REGENERATE, render

    assert api.client.get("/api/v1/openapi.json").status_code == 401
    served = api.client.get("/api/v1/openapi.json", headers=api.auth("plant-a", "viewer"))
    assert served.status_code == 200
    checked_in = (REPO / "docs" / "openapi.json").read_text()
    assert render(served.json()) == checked_in, \
        f"docs/openapi.json differs from the served document; regenerate: {REGENERATE}"
    paths = served.json()["paths"]
    assert "/api/v1/sites/{site}/findings" in paths and "/healthz" in paths


def test_gap_of_the_cli_and_of_the_api_are_the_same(api: Api) -> None:
    result = CliRunner().invoke(cli, ["gap", "--db", api.url, "--site", "plant-b",
                                      "--format", "json"])
    assert result.exit_code == 0, result.output
    from_cli = json.loads(result.output)
    from_api = api.client.get("/api/v1/sites/plant-b/gap",
                              headers=api.auth("plant-b", "viewer")).json()
    for doc in (from_cli, from_api):
        assert doc.pop("evaluated_at")
    assert from_cli == from_api
    assert from_api["zones"] and from_api["zones"][0]["zone"] == "cell-1"
    other = api.client.get("/api/v1/sites/plant-a/gap", headers=api.auth("plant-a", "viewer"))
    other_doc = other.json()
    other_doc.pop("evaluated_at")
    assert other_doc != from_api  # plant-a's facts differ: a gap of the wrong site would show
