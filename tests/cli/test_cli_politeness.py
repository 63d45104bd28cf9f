"""`otaudit probe` keeps the plant's rules on its own: paced requests, one connection.

Each protocol's simulator runs in this process and records what reaches it; the probe runs
as the CLI a user types. The simulator's request log is judged by the same politeness check
as the plant bench. A run with ``--min-interval 0`` shows that the check would notice.
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from otaudit.settings import DEFAULT_MIN_REQUEST_INTERVAL
from otaudit.simulators import create_simulator
from otaudit.simulators.fleet.politeness import DATAGRAM_PROTOCOLS, device_check

OTAUDIT = Path(sys.executable).with_name("otaudit")
PASSWORD_VAR = "OTAUDIT_TEST_POLITE_SSH_PASSWORD"

# protocol -> (simulator profile, probe options): a device of each kind that answers a
# full probe run of several requests.
CASES = {
    "modbus": ("schneider-m340", ["--unit", "1"]),
    "s7": ("s7-300-weak", ["--rack", "0", "--slot", "2"]),
    "snmp": ("hirschmann-rs20-weak", ["--community", "public", "--version", "v2c"]),
    "ssh": ("hmi-weak", ["--user", "auditor", "--password-env", PASSWORD_VAR,
                         "--personality", "linux"]),
    "enip": ("controllogix-5580", ["--tls-port", "0"]),
    "opcua": ("opcua-weak", ["--read-build-info", "true"]),
}


async def probe_through_cli(protocol: str, tmp_path: Path, *extra: str):
    profile, options = CASES[protocol]
    env = {**os.environ, PASSWORD_VAR: "otaudit-demo",
           "OTAUDIT_SSH_KNOWN_HOSTS": str(tmp_path / "known_hosts"),
           "OTAUDIT_SSH_SIM_KEY_DIR": str(tmp_path / "keys")}
    env.pop("OTAUDIT_MIN_REQUEST_INTERVAL", None)
    device = create_simulator(protocol, profile)
    async with device:
        proc = await asyncio.create_subprocess_exec(
            str(OTAUDIT), "probe", protocol, "127.0.0.1", "--port", str(device.port),
            *options, *extra, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=env)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, (out + err).decode()
    records = [asdict(r) for r in device.log.records]
    return device_check(protocol, protocol, records, connections=device.log.connections,
                        max_concurrent=device.log.max_concurrent)


@pytest.mark.parametrize("protocol", sorted(CASES))
async def test_probe_cli_is_paced_and_uses_one_connection(protocol: str, tmp_path: Path):
    check = await probe_through_cli(protocol, tmp_path)
    interval = DEFAULT_MIN_REQUEST_INTERVAL
    assert check.requests >= 3, "too few requests to judge the pacing"
    assert not check.hurried(interval, interval / 2), check.sequence
    if protocol not in DATAGRAM_PROTOCOLS:
        assert check.max_concurrent == 1


@pytest.mark.parametrize("protocol", sorted(CASES))
async def test_the_check_notices_an_unpaced_probe(protocol: str, tmp_path: Path):
    check = await probe_through_cli(protocol, tmp_path, "--min-interval", "0")
    interval = DEFAULT_MIN_REQUEST_INTERVAL
    assert check.hurried(interval, interval / 2), check.sequence
