"""Helpers for the S7 tests: run the probe against a simulator, read ../shared data banks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from otaudit.observation import AssetKind, AssetRef, Observation
from otaudit.probes.base import ProbeTarget
from otaudit.probes.runner import run_probe
from otaudit.probes.s7.probe import S7Options, S7Probe
from otaudit.settings import DEFAULT_MIN_REQUEST_INTERVAL
from otaudit.simulators.base import SimulatedDevice
from otaudit.simulators.s7.profile import S7Profile

PRODUCTS = {"s7-300": "SIMATIC S7-300", "s7-400": "SIMATIC S7-400",
            "s7-1200": "SIMATIC S7-1200", "s7-1500": "SIMATIC S7-1500"}
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "s7"
DATABANKS = Path("fixtures/real/s7/snap7_cpu315-2pndp_szl_databanks.txt")


def target_for(host: str, port: int, **options: Any) -> ProbeTarget:
    return ProbeTarget(asset=AssetRef(id="plc-test", kind=AssetKind.PLC, zone="cell-1"),
                       host=host, port=port, options=S7Options(**options))


async def probe(device: SimulatedDevice, *, deadline: float = 10.0,
                op_timeout: float | None = 3.0, min_interval: float = DEFAULT_MIN_REQUEST_INTERVAL,
                **options: Any) -> Observation:
    return await run_probe(S7Probe(), target_for(device.host, device.port, **options),
                           collector_id="test", site="test", deadline=deadline,
                           op_timeout=op_timeout, min_interval=min_interval)


def values(obs: Observation) -> dict[str, Any]:
    return {path: fact.value for path, fact in obs.facts.items()}


def expected_facts(profile: S7Profile) -> dict[str, Any]:
    """What the probe must report for a profile that serves generated records."""
    c, p = profile.components, profile.protection
    facts: dict[str, Any] = {
        "s7.classic_access": True,
        "identity.vendor": "Siemens",
        "identity.product": PRODUCTS[profile.family],
        "identity.order_code": profile.module.order_code,
        "identity.firmware_version": profile.module.firmware,
        "identity.hardware_version": str(profile.module.hardware_version),
        "identity.serial": c.serial,
        "identity.name": c.plc_name,
        "identity.model": c.module_type,
        "s7.module_type": c.module_type,
        "s7.module_name": c.module_name,
        "s7.plant_id": c.plant_id,
        "s7.location": c.location,
        "s7.copyright": c.copyright,
        "s7.protection_level": p.effective,
        "s7.protection_meaning": {1: "no protection", 2: "write protection",
                                  3: "read/write protection"}[p.effective],
        "s7.protection_parametrised": p.parametrised,
        "s7.protection_key_switch": p.key_switch,
        "s7.password_set": p.parametrised != 0,
        "s7.mode_selector": p.mode_selector,
        "s7.cpu_mode": profile.cpu_mode,
    }
    return {k: v for k, v in facts.items() if v != "" or not k.startswith("identity.")}


def databank(shared_dir: Path) -> dict[tuple[int, int | None], bytes]:
    """snap7's captured CPU 315-2 PN/DP data banks: (SZL id, index or None) → partial list."""
    banks: dict[tuple[int, int | None], bytes] = {}
    for line in (shared_dir / DATABANKS).read_text().splitlines():
        if not line.startswith("SZL_ID_"):
            continue
        name, _count, hexdata = line.split()
        _, _, szl_id, _, index = name.split("_")
        data = bytes.fromhex(hexdata)
        assert data[:2] == b"\xff\x09"
        banks[(int(szl_id, 16), None if index == "XXXX" else int(index, 16))] = data[8:]
    return banks


def s7_1200_dump() -> bytes:
    """SZL 0x0011 of a physical CPU 1214C (MIT, python-snap7 tests)."""
    lines = (FIXTURES / "szl0011_s7-1200_cpu1214c.hex").read_text().splitlines()
    return bytes.fromhex("".join(x for x in lines if x and not x.startswith("#")))
