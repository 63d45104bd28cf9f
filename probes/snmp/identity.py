"""Vendor-aware identity extraction (sysDescr, vendor OIDs, ENTITY-MIB) from vendors.yaml."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from otaudit.probes.base import ParseError
from otaudit.probes.snmp.parse import normalise_order_code

VENDORS_FILE = Path(__file__).with_name("vendors.yaml")
FIELDS = ("vendor", "product", "model", "order_code", "firmware_version", "hardware_version",
          "serial", "os")
ENTITY_FIELDS = {"model": ("model",), "serial": ("serial",), "hardware_version": ("hardware_rev",)}
MAX_MATCH_INPUT = 4096


@dataclass(frozen=True)
class OidRule:
    name: str
    oid: str
    pattern: re.Pattern[str]


@dataclass(frozen=True)
class VendorRule:
    id: str
    vendor: str | None
    match_descr: re.Pattern[str] | None
    match_object_id: tuple[str, ...]
    sys_descr: re.Pattern[str] | None
    templates: dict[str, str] = field(default_factory=dict)
    oids: tuple[OidRule, ...] = ()
    entity_firmware: tuple[str, ...] = ("firmware_rev", "software_rev")

    def matches(self, sys_descr: str, sys_object_id: str) -> bool:
        if self.match_descr and self.match_descr.search(sys_descr[:MAX_MATCH_INPUT]):
            return True
        return any(sys_object_id.startswith(p) for p in self.match_object_id)


@dataclass(frozen=True)
class VendorTable:
    rules: tuple[VendorRule, ...]
    manufacturers: tuple[tuple[re.Pattern[str], str], ...]
    default_communities: tuple[str, ...]

    def match(self, sys_descr: str, sys_object_id: str) -> VendorRule | None:
        return next((r for r in self.rules if r.matches(sys_descr, sys_object_id)), None)

    def manufacturer(self, mfg_name: str) -> str | None:
        return next((v for p, v in self.manufacturers if p.search(mfg_name)), None)


@lru_cache(maxsize=4)
def load_vendors(path: Path = VENDORS_FILE) -> VendorTable:
    """Read and compile vendors.yaml; ValueError names the bad entry."""
    data = yaml.safe_load(path.read_text())
    rules = []
    for raw in data.get("rules", []):
        try:
            match = raw.get("match") or {}
            rules.append(VendorRule(
                id=raw["id"], vendor=raw.get("vendor"),
                match_descr=re.compile(match["sys_descr"]) if "sys_descr" in match else None,
                match_object_id=tuple(match.get("sys_object_id", ())),
                sys_descr=re.compile(raw["sys_descr"]) if raw.get("sys_descr") else None,
                templates=dict(raw.get("identity") or {}),
                oids=tuple(OidRule(o["name"], o["oid"], re.compile(o["pattern"]))
                           for o in raw.get("oids", [])),
                entity_firmware=tuple(raw.get("entity_firmware",
                                              ("firmware_rev", "software_rev"))),
            ))
        except (KeyError, TypeError, re.error) as exc:
            raise ValueError(f"{path}: rule {raw.get('id', '?')!r}: {exc}") from None
    manufacturers = tuple((re.compile(m["pattern"]), m["vendor"])
                          for m in data.get("manufacturers", []))
    return VendorTable(tuple(rules), manufacturers,
                       tuple(str(c) for c in data.get("default_communities", [])))


def fields_from_text(pattern: re.Pattern[str], text: str,
                     templates: dict[str, str] | None = None) -> dict[str, str]:
    """Identity fields from the named groups of ``pattern`` found in ``text``.

    Groups named like an identity field fill it; ``templates`` (``'SIMATIC {product}'``)
    override. No match -> ``{}``. Raises ParseError only for a template naming an
    unknown field.
    """
    found = pattern.search(text[:MAX_MATCH_INPUT])
    if not found:
        return {}
    groups = {k: v.strip() for k, v in found.groupdict().items() if v and v.strip()}
    out = {k: v for k, v in groups.items() if k in FIELDS}
    for name, template in (templates or {}).items():
        if name not in FIELDS:
            raise ParseError(f"template for unknown identity field {name!r}")
        try:
            out[name] = template.format(**groups)
        except (KeyError, IndexError, ValueError):
            continue  # a group the template needs did not match
    if "order_code" in out:
        out["order_code"] = normalise_order_code(out["order_code"])
    return out


def chassis(entities: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The entity that describes the device: first chassis row, or the only row."""
    rows = [e for e in entities if e.get("class") == "chassis"]
    if rows:
        return rows[0]
    return entities[0] if len(entities) == 1 else None


def fields_from_entity(entity: dict[str, Any], firmware_columns: tuple[str, ...]
                       ) -> dict[str, str]:
    out = {name: entity[cols[0]] for name, cols in ENTITY_FIELDS.items() if entity.get(cols[0])}
    firmware = next((entity[c] for c in firmware_columns if entity.get(c)), None)
    if firmware:
        out["firmware_version"] = firmware
    return out


def merge(*sources: tuple[str, dict[str, str]]) -> dict[str, tuple[str, str]]:
    """``field -> (value, source)``; earlier sources win."""
    merged: dict[str, tuple[str, str]] = {}
    for source, values in sources:
        for name, value in values.items():
            merged.setdefault(name, (value, source))
    return merged
