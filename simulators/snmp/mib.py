"""Turns a profile into the agent's OID table: system group, IF-MIB, ENTITY-MIB, extras.

Numeric OIDs throughout (pysnmp ships no ENTITY-MIB).
"""

from __future__ import annotations

import time
from typing import Any

from pysnmp.proto.api import v2c

from otaudit.simulators.snmp.profile import SnmpProfile
from otaudit.simulators.snmp.recordings import load_recording
from otaudit.simulators.snmp.values import Oid, OidTable, make_value, parse_oid

SYSTEM = (1, 3, 6, 1, 2, 1, 1)
IF_NUMBER = (1, 3, 6, 1, 2, 1, 2, 1, 0)
IF_ENTRY = (1, 3, 6, 1, 2, 1, 2, 2, 1)
IFX_ENTRY = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)
ENT_PHYSICAL_ENTRY = (1, 3, 6, 1, 2, 1, 47, 1, 1, 1, 1)

IF_STATUS = {"up": 1, "down": 2, "testing": 3, "unknown": 4, "dormant": 5, "notPresent": 6,
             "lowerLayerDown": 7}
ENTITY_CLASS = {"other": 1, "unknown": 2, "chassis": 3, "backplane": 4, "container": 5,
                "powerSupply": 6, "fan": 7, "sensor": 8, "module": 9, "port": 10, "stack": 11,
                "cpu": 12}


def build_table(profile: SnmpProfile, started: float | None = None) -> OidTable:
    """All OIDs the profile's device serves (a recording, if named, is the base)."""
    table = OidTable(load_recording(profile.recording, profile.skip_bad_lines).items()
                     if profile.recording else ())
    started = time.monotonic() if started is None else started
    if profile.system:
        table.update(_system(profile, started))
    if profile.interfaces:
        table.update(_interfaces(profile))
    if profile.entities:
        table.update(_entities(profile))
    for extra in profile.extra:
        table.set(parse_oid(extra.oid), make_value(extra.type, extra.value))
    return table


def _s(text: str) -> Any:
    return v2c.OctetString(text.encode("utf-8"))


def _rows(entry: Oid, index: int, columns: dict[int, Any]) -> list[tuple[Oid, Any]]:
    return [((*entry, column, index), value) for column, value in columns.items()]


def _system(profile: SnmpProfile, started: float) -> list[tuple[Oid, Any]]:
    system = profile.system
    assert system is not None
    if system.uptime is not None:
        uptime: Any = v2c.TimeTicks(system.uptime)
    else:
        def uptime() -> Any:
            return v2c.TimeTicks(int((time.monotonic() - started) * 100) % 2**32)
    return _rows(SYSTEM, 0, {
        1: _s(system.descr), 2: v2c.ObjectIdentifier(parse_oid(system.object_id)), 3: uptime,
        4: _s(system.contact), 5: _s(system.name), 6: _s(system.location),
        7: v2c.Integer32(system.services),
    })


def _mac(text: str) -> Any:
    return v2c.OctetString(hexValue=text.replace(":", "").replace("-", ""))


def _interfaces(profile: SnmpProfile) -> list[tuple[Oid, Any]]:
    rows: list[tuple[Oid, Any]] = [(IF_NUMBER, v2c.Integer32(len(profile.interfaces)))]
    for i in profile.interfaces:
        rows += _rows(IF_ENTRY, i.index, {
            1: v2c.Integer32(i.index), 2: _s(i.descr if i.descr is not None else i.name),
            3: v2c.Integer32(i.type), 4: v2c.Integer32(i.mtu),
            5: v2c.Gauge32(min(i.speed, 2**32 - 1)), 6: _mac(i.mac),
            7: v2c.Integer32(IF_STATUS[i.admin]), 8: v2c.Integer32(IF_STATUS[i.oper]),
            9: v2c.TimeTicks(0), 10: v2c.Counter32(0), 16: v2c.Counter32(0),
        })
        rows += _rows(IFX_ENTRY, i.index, {
            1: _s(i.name), 6: v2c.Counter64(0), 10: v2c.Counter64(0),
            15: v2c.Gauge32(i.speed // 1_000_000), 18: _s(i.alias),
        })
    return rows


def _entities(profile: SnmpProfile) -> list[tuple[Oid, Any]]:
    rows: list[tuple[Oid, Any]] = []
    for e in profile.entities:
        rows += _rows(ENT_PHYSICAL_ENTRY, e.index, {
            2: _s(e.descr), 3: v2c.ObjectIdentifier(parse_oid(e.vendor_type)),
            4: v2c.Integer32(e.contained_in), 5: v2c.Integer32(ENTITY_CLASS[e.entity_class]),
            6: v2c.Integer32(e.parent_rel_pos), 7: _s(e.name), 8: _s(e.hardware_rev),
            9: _s(e.firmware_rev), 10: _s(e.software_rev), 11: _s(e.serial), 12: _s(e.mfg),
            13: _s(e.model), 14: _s(""), 15: _s(""), 16: v2c.Integer32(1 if e.is_fru else 2),
        })
    return rows
