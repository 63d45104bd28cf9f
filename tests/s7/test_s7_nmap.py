"""nmap's s7-info (a client nobody here wrote) must read our simulator like a real CPU.

s7-info's port rule only fires on 102/iso-tsap, so the script is forced with
``--script +s7-info`` on the simulator's high port (as in ../shared's nmap field notes).
It reads fixed offsets: record 1/6 MLFB, the version bytes of the third 0x0011 record,
and records 1-5 of 0x001C (nmap's "Module Type" is record 2, the module name).
"""

from __future__ import annotations

import asyncio
import re
import subprocess

import pytest
from s7_testkit import databank

from otaudit.simulators import bundled_profile
from otaudit.simulators.s7.device import S7Device, from_profile
from otaudit.simulators.s7.profile import S7Profile, load_profile

from tests_helpers import require_tool

pytestmark = pytest.mark.external_tool
PROFILES = sorted(p.stem for p in bundled_profile("s7", "s7-1200-weak").parent.glob("*.yaml")
                  if "refusing" not in p.stem)


async def nmap_s7_info(device: S7Device) -> dict[str, str]:
    nmap = require_tool("nmap")
    done = await asyncio.to_thread(
        subprocess.run, [nmap, "-Pn", "-sT", "-n", "-p", str(device.port),
                         "--script", "+s7-info", device.host],
        capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    assert "s7-info" in done.stdout and "ERROR" not in done.stdout, done.stdout
    return {m.group(1): m.group(2) for m in
            re.finditer(r"^\|[ _]\s+([A-Za-z ]+): (.*)$", done.stdout, re.MULTILINE)}


@pytest.mark.parametrize("name", PROFILES)
async def test_nmap_reads_the_profile(name):
    async with from_profile(bundled_profile("s7", name)) as device:
        fields = await nmap_s7_info(device)
    p = device.profile
    assert fields["Module"].strip() == p.module.order_code
    assert fields["Basic Hardware"].strip() == p.module.order_code
    assert fields["Version"] == p.module.firmware.lstrip("V")
    assert fields["Serial Number"] == p.components.serial
    assert fields["System Name"] == p.components.plc_name
    assert fields["Module Type"] == p.components.module_name
    assert fields["Copyright"] == p.components.copyright
    assert fields.get("Plant Identification", "") == p.components.plant_id
    assert device.log.kinds() <= {"cotp_connect", "setup_communication", "read_szl"}


async def test_nmap_reads_the_real_cpu_recording(shared_dir):
    banks = databank(shared_dir)
    profile = load_profile(bundled_profile("s7", "s7-300-weak"))
    raw = {"0x0011": banks[(0x0011, None)].hex(), "0x001C": banks[(0x001C, None)].hex()}
    async with S7Device(S7Profile.model_validate({**profile.model_dump(), "raw_szl": raw})) \
            as device:
        fields = await nmap_s7_info(device)
    # the same as nmap 7.93 printed against libsnap7's server with these data banks
    assert fields == {"Module": "6ES7 315-2EH14-0AB0 ", "Basic Hardware": "6ES7 315-2EH14-0AB0 ",
                      "Version": "3.2.6", "System Name": "SNAP7-SERVER",
                      "Module Type": "CPU 315-2 PN/DP", "Serial Number": "S C-C2UR28922012",
                      "Copyright": "Original Siemens Equipment"}
