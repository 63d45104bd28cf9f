"""Drift events through the API: the same rows as ``otaudit drift`` (one service), kept per
site, filtered by asset and time. SQLite and PostgreSQL."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from otaudit.cli.main import app
from otaudit.server.db import make_engine
from otaudit.server.ingest import Ingestor

from support.api import FACTS, Api
from support.observations import make_observation


def _firmware_change(api: Api) -> None:
    later = make_observation(site="plant-a", collector="c-plant-a", asset="plc-1", minutes=90,
                             facts={**FACTS["plant-a"], "identity.firmware_version": "3.20"})
    engine = make_engine(api.url)
    result = Ingestor(engine).ingest([("otaudit/v1/plant-a/c-plant-a/obs/plc-1",
                                       later.to_json())])
    engine.dispose()
    assert [d.fact for d in result.drift] == ["identity.firmware_version"]


def test_drift_in_the_api_is_the_cli_s_and_stays_in_its_site(api: Api) -> None:
    _firmware_change(api)
    got = api.client.get("/api/v1/sites/plant-a/drift", headers=api.auth("plant-a", "viewer"))
    assert got.status_code == 200, got.text
    items = got.json()["items"]
    assert [(e["asset_id"], e["fact"], e["before"], e["after"]) for e in items] == [
        ("plc-1", "identity.firmware_version", "3.10", "3.20")]
    cli = CliRunner().invoke(app, ["drift", "--site", "plant-a", "--format", "json",
                                   "--db", api.url])
    assert cli.exit_code == 0, cli.output
    assert json.loads(cli.output) == items
    other = api.client.get("/api/v1/sites/plant-b/drift", headers=api.auth("plant-b", "viewer"))
    assert other.json()["items"] == []
    assert api.client.get("/api/v1/sites/plant-b/drift",
                          headers=api.auth("plant-a", "viewer")).status_code == 403


def test_drift_filters(api: Api) -> None:
    _firmware_change(api)
    head = api.auth("plant-a", "viewer")
    detected = api.client.get("/api/v1/sites/plant-a/drift", headers=head).json()["items"][0]
    assert api.client.get("/api/v1/sites/plant-a/drift", headers=head,
                          params={"asset": "plc-2"}).json()["items"] == []
    at = detected["detected_at"]
    same = api.client.get("/api/v1/sites/plant-a/drift", headers=head, params={"since": at})
    assert len(same.json()["items"]) == 1  # since is inclusive
    assert api.client.get("/api/v1/sites/plant-a/drift", headers=head,
                          params={"since": "2999-01-01T00:00:00Z"}).json()["items"] == []
