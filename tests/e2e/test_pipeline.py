"""End to end: simulators → collector → MQTT → server → database → findings and report.

Runs on the real Mosquitto with SQLite and with PostgreSQL, and once with the embedded
broker (the zero-setup default of `otaudit demo`).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from otaudit.cli.demo import run_pipeline
from otaudit.server.db import FindingRow, ObservationRow, RejectedMessage, make_engine
from otaudit.settings import Settings

pytestmark = pytest.mark.slow


def isolated() -> Settings:
    """A topic prefix of its own: other tests share the machine's broker."""
    return Settings(topic_prefix=f"otaudit-test/{uuid.uuid4().hex[:10]}")


def findings_by_asset(database_url: str) -> dict[str, dict[str, str]]:
    engine = make_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(FindingRow.asset_id, FindingRow.check_id,
                                      FindingRow.status)).all()
        observations = conn.execute(sa.select(sa.func.count()).select_from(ObservationRow)
                                    ).scalar_one()
        rejected = conn.execute(sa.select(sa.func.count()).select_from(RejectedMessage)
                                ).scalar_one()
    engine.dispose()
    out: dict[str, dict[str, str]] = {}
    for asset, check, status in rows:
        out.setdefault(asset, {})[check] = status
    out["_counts"] = {"observations": str(observations), "rejected": str(rejected)}
    return out


def assert_modbus_expectations(found: dict[str, dict[str, str]]) -> None:
    """The Modbus PLCs have no authentication (a capability gap, compensated in cell-1 by the
    example conduit firewall) and the gateway's identity and firmware could not be read."""
    for plc in ("plc-m340", "plc-m221"):
        statuses = found[plc]
        assert statuses.get("OTA-MB-001") in ("capability_gap", "compensated"), statuses
        assert statuses.get("OTA-MB-003") == "pass", statuses
    assert found["gw-modbus"].get("OTA-MB-003") == "capability_gap", found["gw-modbus"]


async def test_demo_plant_on_mosquitto_with_sqlite(tmp_path: Path, mosquitto_url: str) -> None:
    result = await run_pipeline(tmp_path, broker_url=mosquitto_url, settings=isolated())
    assert result.published == result.stored > 0 and result.rejected == 0
    found = findings_by_asset(f"sqlite:///{tmp_path / 'otaudit.db'}")
    assert found["_counts"]["observations"] == str(result.published)
    assert_modbus_expectations(found)
    engine = make_engine(f"sqlite:///{tmp_path / 'otaudit.db'}")
    with engine.connect() as conn:  # every stored envelope was signed and verified
        signed = conn.execute(sa.text("SELECT count(*) FROM collector_sequences")).scalar_one()
    engine.dispose()
    assert signed == result.stored
    assets = {a["asset_id"]: a for a in result.report["assets"]}
    m340 = assets["plc-m340"]
    assert m340["identity"]["vendor"] == "Schneider Electric"
    assert m340["probes"][0]["status"] == "ok"
    assert assets["gw-modbus"]["probes"][0]["status"] == "error"
    gap = next(f for f in assets["gw-modbus"]["findings"] if f["check_id"] == "OTA-MB-003")
    assert gap["evidence"] and gap["evidence"][0]["observation_id"]
    assert gap["evidence"][0]["fact"] == "modbus.device_id_supported"


async def test_demo_plant_on_mosquitto_with_postgres(tmp_path: Path, mosquitto_url: str,
                                                    postgres_url: str) -> None:
    result = await run_pipeline(tmp_path, broker_url=mosquitto_url, database_url=postgres_url,
                                  settings=isolated())
    assert result.published == result.stored > 0
    assert_modbus_expectations(findings_by_asset(postgres_url))


def test_demo_command_with_embedded_broker(tmp_path: Path) -> None:
    """`otaudit demo` (the README's main job) needs no broker and writes its report."""
    import json

    from typer.testing import CliRunner

    from otaudit.cli.main import app

    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "SL-T/SL-A" in result.output and "observations published" in result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert {a["zone"] for a in report["assets"]} == {"cell-1", "control"}
    assert_modbus_expectations(findings_by_asset(f"sqlite:///{tmp_path / 'otaudit.db'}"))
