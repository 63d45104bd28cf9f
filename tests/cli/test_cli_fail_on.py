"""``--fail-on``: each condition makes report / gap / patch status exit 1 exactly when it is
found, and 0 on a database where it is not."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import otaudit.server.advisories.db  # noqa: F401  (tables on Base before init_db)
from otaudit.cli.failon import FailOn, parse_fail_on
from otaudit.cli.main import app
from otaudit.errors import ExitCode, InputError
from otaudit.inventory import Inventory
from otaudit.mqtt import observation_topic
from otaudit.observation import ProbeStatus
from otaudit.server.advisories.importer import import_source
from otaudit.server.advisories.patch import refresh_patch_status
from otaudit.server.db import init_db, make_engine, session_factory
from otaudit.server.ingest import Ingestor
from otaudit.server.store import upsert_zones

from support.observations import make_observation

CSAF = Path(__file__).parent.parent / "fixtures" / "csaf"
PREFIX = "otaudit/v1"


def _database(url: str, *, dirty: bool) -> str:
    engine = make_engine(url)
    init_db(engine)
    with session_factory(engine).begin() as session:
        import_source(session, str(CSAF), refresh=refresh_patch_status)
        if dirty:  # a zone with no asset is all unknown (no evidence): only the dirty one
            upsert_zones(session, Inventory.model_validate(
                {"site": "plant-a", "zones": [{"id": "cell-1", "sl_t": 2}]}))
    if dirty:
        observations = [
            # S7-1200 V4.4.0 without protection: OTA-S7-001 fails, ICSA-21-152-01 is open
            make_observation("plc-1", probe="s7", facts={
                "identity.vendor": "Siemens", "identity.product": "SIMATIC S7-1200",
                "identity.model": "CPU 1214C DC/DC/DC",
                "identity.order_code": "6ES7 214-1AG40-0XB0",
                "identity.firmware_version": "V4.4.0", "s7.classic_access": True,
                "s7.protection_level": 1}),
            # Modbus reads without authentication: a capability gap
            make_observation("plc-2", probe="modbus", facts={
                "modbus.unauthenticated_read": True, "modbus.device_id_supported": True}),
            # a device that did not answer: device-error, its checks unknown
            make_observation("plc-3", probe="modbus", status=ProbeStatus.TIMEOUT),
        ]
        ingestor = Ingestor(engine, topic_prefix=PREFIX)
        ingestor.ingest([(observation_topic(PREFIX, o.site, o.collector_id, o.asset.id),
                          o.model_dump_json().encode()) for o in observations])
        with session_factory(engine).begin() as session:
            refresh_patch_status(session)
    engine.dispose()
    return url


@pytest.fixture
def dirty(sqlite_url: str) -> str:
    return _database(sqlite_url, dirty=True)


@pytest.fixture
def clean(tmp_path: Path) -> str:
    return _database(f"sqlite:///{tmp_path / 'clean.db'}", dirty=False)


COMMANDS = {
    "report": (["report"], list(FailOn)),
    "gap": (["gap"], list(FailOn)),
    "patch status": (["patch", "status"], [FailOn.OPEN_ADVISORY]),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_condition_found_exits_1_and_absent_exits_0(command: str, dirty: str,
                                                         clean: str) -> None:
    args, conditions = COMMANDS[command]
    runner = CliRunner()
    for condition in conditions:
        found = runner.invoke(app, [*args, "--db", dirty, "--fail-on", condition.value])
        assert found.exit_code == ExitCode.FOUND, (condition, found.output)
        assert f"--fail-on: found {condition.value} " in found.output
        absent = runner.invoke(app, [*args, "--db", clean, "--fail-on", condition.value])
        assert absent.exit_code == ExitCode.OK, (condition, absent.output)
    plain = runner.invoke(app, [*args, "--db", dirty])
    assert plain.exit_code == ExitCode.OK, plain.output


def test_patch_status_unknown_means_needs_review(dirty: str) -> None:
    result = CliRunner().invoke(app, ["patch", "status", "--db", dirty, "--state", "open",
                                      "--fail-on", "unknown"])
    assert result.exit_code == ExitCode.OK, result.output  # only open rows listed


def test_parse_fail_on_spellings_and_refusals() -> None:
    every = list(FailOn)
    assert parse_fail_on("fail, capability-gap,UNKNOWN", every) == {
        FailOn.FAIL, FailOn.CAPABILITY_GAP, FailOn.UNKNOWN}
    assert parse_fail_on("open_advisory,device-error", every) == {
        FailOn.OPEN_ADVISORY, FailOn.DEVICE_ERROR}
    assert parse_fail_on(None, every) == set() == parse_fail_on("", every)
    with pytest.raises(InputError, match="this command can check device-error"):
        parse_fail_on("fail", [FailOn.DEVICE_ERROR])
