"""Clients nobody here wrote read the simulator like a controller, and agree with the probe.

nmap's enip-info (ListIdentity over TCP; its port rule wants 44818, so the script is
forced with ``+enip-info`` on the simulator's port) and pycomm3 (ListIdentity, then a
CIP session and Get_Attributes_All of the Identity object).
"""

from __future__ import annotations

import asyncio
import re
import subprocess

import pytest
from enip_helpers import PROFILES, probe_device, simulator

from tests_helpers import require_tool

pytestmark = pytest.mark.external_tool


async def nmap_enip_info(host: str, port: int) -> dict[str, str]:
    nmap = require_tool("nmap")
    done = await asyncio.to_thread(
        subprocess.run, [nmap, "-Pn", "-sT", "-n", "-p", str(port), "--script", "+enip-info",
                         host], capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    assert "enip-info" in done.stdout and "ERROR" not in done.stdout, done.stdout
    return {m.group(1): m.group(2).strip() for m in
            re.finditer(r"^\|[ _]\s+(\w+): (.*)$", done.stdout, re.MULTILINE)}


@pytest.mark.parametrize("name", PROFILES)
async def test_nmap_enip_info_agrees_with_the_probe(name):
    async with simulator(name) as device:
        fields = await nmap_enip_info(device.host, device.port)
        obs = await probe_device(device)
    assert fields["productName"] == obs.fact("enip.product_name")
    assert fields["revision"] == obs.fact("enip.revision")
    assert int(fields["serialNumber"], 16) == int(obs.fact("identity.serial"), 16)
    assert int(fields["productCode"]) == obs.fact("enip.product_code")
    assert int(fields["status"], 16) == obs.fact("enip.status")
    assert int(fields["state"], 16) == obs.fact("enip.state")
    assert fields["type"] == f"{obs.fact('enip.device_type_name')} " \
                             f"({obs.fact('enip.device_type')})"
    assert fields["vendor"].endswith(f"({obs.fact('enip.vendor_id')})")
    assert fields["vendor"].startswith("Rockwell Automation")
    assert fields["deviceIp"] == device.host


@pytest.mark.parametrize("name", ["controllogix-5580", "micro850"])
async def test_pycomm3_agrees_with_the_probe(name):
    pycomm3 = pytest.importorskip("pycomm3")

    def read(host: str, port: int) -> tuple[dict, bytes]:
        path = f"{host}:{port}"
        listed = pycomm3.CIPDriver.list_identity(path)
        with pycomm3.CIPDriver(path) as driver:
            tag = driver.generic_message(service=0x01, class_code=0x01, instance=0x01,
                                         connected=False, unconnected_send=False,
                                         route_path=False, name="identity")
        assert tag.error is None, tag.error
        return listed, tag.value

    async with simulator(name) as device:
        listed, raw = await asyncio.to_thread(read, device.host, device.port)
        obs = await probe_device(device)
    assert listed["product_name"] == obs.fact("enip.product_name")
    assert f"{listed['revision']['major']}.{listed['revision']['minor']}" == \
        obs.fact("enip.revision")
    assert int(listed["serial"], 16) == int(obs.fact("identity.serial"), 16)
    assert listed["product_code"] == obs.fact("enip.product_code")
    assert listed["product_type"] == obs.fact("enip.device_type_name")
    assert listed["state"] == obs.fact("enip.state")
    from pycomm3.custom_types import ModuleIdentityObject

    module = ModuleIdentityObject.decode(raw)
    assert module["product_name"] == obs.fact("enip.product_name")
    assert module["product_code"] == obs.fact("enip.product_code")
    kinds = [r.kind for r in device.log.records]
    assert kinds.count("get_attributes_all") == 2  # pycomm3's and the probe's
