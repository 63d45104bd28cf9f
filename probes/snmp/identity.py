"""Vendor-aware identity extraction (sysDescr, vendor OIDs, ENTITY-MIB) from vendors.yaml.

The table is data: ``vendors.yaml`` (bundled) and, when the site sets ``vendor_dir``, the
site's ``<vendor_dir>/snmp-vendors.yaml`` in the same format, merged over it (site rules
first; a site rule with a bundled rule's id replaces it). See docs/extending.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from otaudit.observation import AssetKind
from otaudit.probes.base import ParseError
from otaudit.probes.snmp.parse import normalise_order_code

VENDORS_FILE = Path(__file__).with_name("vendors.yaml")
SITE_FILE_NAME = "snmp-vendors.yaml"
FIELDS = ("vendor", "product", "model", "order_code", "firmware_version", "hardware_version",
          "serial", "os")
# The identity of a management card (a UPS's network card, an agent module) kept apart
# from the device it manages: fields named ``card_<field>`` fill ``snmp.management_card``.
CARD_FIELDS = ("vendor", "model", "firmware_version", "hardware_version", "serial")
ALL_FIELDS = FIELDS + tuple(f"card_{f}" for f in CARD_FIELDS)
SOURCES = ("entity", "oid", "sysDescr")
ENTITY_FIELDS = {"model": ("model",), "serial": ("serial",), "hardware_version": ("hardware_rev",)}
KINDS = tuple(kind.value for kind in AssetKind)
MAX_MATCH_INPUT = 4096


class VendorTableError(ValueError):
    """A vendor table file or entry that cannot be used; the message names file and entry."""


@dataclass(frozen=True)
class OidRule:
    name: str
    oid: str  # may hold '{sys_object_id}' (the agent's sysObjectID, no leading dot)
    pattern: re.Pattern[str]
    next: bool = False  # first row under this column (GETNEXT) instead of a GET

    def resolve(self, sys_object_id: str) -> str | None:
        if "{sys_object_id}" in self.oid:
            if not sys_object_id:
                return None
            return self.oid.replace("{sys_object_id}", sys_object_id.lstrip("."))
        return self.oid


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
    kind: str | None = None
    match_present: tuple[str, ...] = ()  # matches when a GET of one of these has a value
    generic: bool = False  # a generic agent (Net-SNMP): a present-OID rule may refine it
    precedence: dict[str, tuple[str, ...]] = field(default_factory=dict)
    placeholders: dict[str, tuple[re.Pattern[str], ...]] = field(default_factory=dict)
    source: str = ""  # file the rule came from

    def matches(self, sys_descr: str, sys_object_id: str) -> bool:
        if self.match_descr and self.match_descr.search(sys_descr[:MAX_MATCH_INPUT]):
            return True
        oid = sys_object_id.lstrip(".")
        return any(oid.startswith(p) or oid == p.rstrip(".") for p in self.match_object_id)

    def order(self, name: str) -> tuple[str, ...]:
        return self.precedence.get(name, SOURCES)


@dataclass(frozen=True)
class VendorTable:
    rules: tuple[VendorRule, ...]
    manufacturers: tuple[tuple[re.Pattern[str], str], ...]
    default_communities: tuple[str, ...]
    placeholders: dict[str, tuple[re.Pattern[str], ...]] = field(default_factory=dict)

    def match(self, sys_descr: str, sys_object_id: str) -> VendorRule | None:
        return next((r for r in self.rules if r.matches(sys_descr, sys_object_id)), None)

    def present_candidates(self) -> tuple[VendorRule, ...]:
        """Rules recognised by a vendor OID answering (devices on a generic agent)."""
        return tuple(r for r in self.rules if r.match_present)

    def manufacturer(self, mfg_name: str) -> str | None:
        return next((v for p, v in self.manufacturers if p.search(mfg_name)), None)

    def placeholder(self, name: str, value: str, rule: VendorRule | None) -> str | None:
        """The pattern that makes ``value`` a vendor placeholder for ``name``, or None."""
        text = value.strip()
        own = rule.placeholders if rule else {}
        for table in (own, self.placeholders):
            for key in (name, "*"):
                for pattern in table.get(key, ()):
                    if pattern.search(text):
                        return pattern.pattern
        return None


def _compile(pattern: Any, where: str) -> re.Pattern[str]:
    try:
        return re.compile(str(pattern))
    except re.error as exc:
        raise VendorTableError(f"{where}: bad regex {pattern!r}: {exc}") from None


def _placeholders(raw: Any, where: str) -> dict[str, tuple[re.Pattern[str], ...]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise VendorTableError(f"{where}: placeholders must map a field (or '*') to regexes")
    out = {}
    for name, patterns in raw.items():
        if name != "*" and name not in (*FIELDS, "name", "sys_contact", "sys_location"):
            raise VendorTableError(f"{where}: placeholders for unknown field {name!r}")
        if not isinstance(patterns, list):
            raise VendorTableError(f"{where}: placeholders.{name} must be a list of regexes")
        out[str(name)] = tuple(_compile(p, f"{where}: placeholders.{name}") for p in patterns)
    return out


def _oid_rule(raw: Any, where: str) -> OidRule:
    if not isinstance(raw, dict) or "oid" not in raw:
        raise VendorTableError(f"{where}: an oid entry needs 'oid'")
    unknown = set(raw) - {"name", "oid", "pattern", "field", "next"}
    if unknown:
        raise VendorTableError(f"{where}: unknown key(s) {sorted(unknown)} in oid {raw['oid']}")
    oid = str(raw["oid"])
    if not re.fullmatch(r"(?:\{sys_object_id\}|\d+)(?:\.\d+)*", oid):
        raise VendorTableError(f"{where}: oid {oid!r} is not numeric (or {{sys_object_id}}.N)")
    if ("pattern" in raw) == ("field" in raw):
        raise VendorTableError(f"{where}: oid {oid} needs exactly one of 'pattern' or 'field'")
    if "field" in raw:
        name = str(raw["field"])
        if name not in ALL_FIELDS:
            raise VendorTableError(f"{where}: oid {oid}: unknown field {name!r}")
        pattern = re.compile(rf"^\s*(?P<{name}>.*?)\s*$", re.DOTALL)
    else:
        pattern = _compile(raw["pattern"], f"{where}: oid {oid}")
        bad = set(pattern.groupindex) - set(ALL_FIELDS)
        if not bad <= {g for g in pattern.groupindex if g.startswith("_")}:
            raise VendorTableError(f"{where}: oid {oid}: groups {sorted(bad)} name no field "
                                   "(prefix helper groups with '_')")
    return OidRule(str(raw.get("name", oid)), oid, pattern, bool(raw.get("next", False)))


def parse_rule(raw: Any, where: str) -> VendorRule:
    """One rule of a vendor table; VendorTableError names ``where`` and the rule id."""
    if not isinstance(raw, dict) or not raw.get("id"):
        raise VendorTableError(f"{where}: every rule needs an 'id'")
    where = f"{where}: rule {raw['id']!r}"
    known = {"id", "vendor", "kind", "match", "sys_descr", "identity", "oids",
             "entity_firmware", "precedence", "placeholders", "generic"}
    unknown = set(raw) - known
    if unknown:
        raise VendorTableError(f"{where}: unknown key(s) {sorted(unknown)}")
    match = raw.get("match") or {}
    if not isinstance(match, dict) or not set(match) <= {"sys_descr", "sys_object_id", "present"}:
        raise VendorTableError(f"{where}: match takes sys_descr, sys_object_id, present")
    if not match:
        raise VendorTableError(f"{where}: 'match' is empty (the rule would never apply)")
    kind = raw.get("kind")
    if kind is not None and kind not in KINDS:
        raise VendorTableError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
    templates = dict(raw.get("identity") or {})
    for name in templates:
        if name not in ALL_FIELDS:
            raise VendorTableError(f"{where}: identity template for unknown field {name!r}")
    precedence = {}
    for name, order in (raw.get("precedence") or {}).items():
        if name not in ALL_FIELDS or not set(order) <= set(SOURCES):
            raise VendorTableError(f"{where}: precedence.{name} must list {', '.join(SOURCES)}")
        precedence[name] = tuple(order)
    oids = tuple(_oid_rule(o, where) for o in raw.get("oids") or [])
    descr = _compile(raw["sys_descr"], f"{where}: sys_descr") if raw.get("sys_descr") else None
    return VendorRule(
        id=str(raw["id"]), vendor=raw.get("vendor"),
        match_descr=_compile(match["sys_descr"], f"{where}: match.sys_descr")
        if "sys_descr" in match else None,
        match_object_id=tuple(str(p).lstrip(".") for p in match.get("sys_object_id", ())),
        sys_descr=descr, templates=templates, oids=oids,
        entity_firmware=tuple(raw.get("entity_firmware", ("firmware_rev", "software_rev"))),
        kind=kind, match_present=tuple(str(o) for o in match.get("present", ())),
        generic=bool(raw.get("generic", False)), precedence=precedence,
        placeholders=_placeholders(raw.get("placeholders"), where), source=where)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise VendorTableError(f"{path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise VendorTableError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise VendorTableError(f"{path}: expected a mapping with 'rules'")
    unknown = set(data) - {"rules", "manufacturers", "default_communities", "placeholders"}
    if unknown:
        raise VendorTableError(f"{path}: unknown top-level key(s) {sorted(unknown)}")
    return data


def _rules(data: dict[str, Any], path: Path) -> list[VendorRule]:
    rules = [parse_rule(raw, str(path)) for raw in data.get("rules") or []]
    seen: set[str] = set()
    for rule in rules:
        if rule.id in seen:
            raise VendorTableError(f"{path}: rule {rule.id!r} is defined twice")
        seen.add(rule.id)
    return rules


def _manufacturers(data: dict[str, Any], path: Path) -> list[tuple[re.Pattern[str], str]]:
    out = []
    for n, raw in enumerate(data.get("manufacturers") or [], 1):
        if not isinstance(raw, dict) or "pattern" not in raw or "vendor" not in raw:
            raise VendorTableError(f"{path}: manufacturers entry {n} needs pattern and vendor")
        out.append((_compile(raw["pattern"], f"{path}: manufacturers entry {n}"),
                    str(raw["vendor"])))
    return out


def load_vendors(path: Path = VENDORS_FILE, site_dir: Path | None = None) -> VendorTable:
    """The bundled table, with ``<site_dir>/snmp-vendors.yaml`` merged over it if present.

    Site rules are tried first; a site rule with the id of a bundled rule replaces it.
    Site manufacturers come first, site placeholders add to the bundled ones, site
    default communities add to them. VendorTableError names file and entry. The result
    is cached until one of the files changes.
    """
    site_path = Path(site_dir) / SITE_FILE_NAME if site_dir is not None else None
    stamps = tuple(_stamp(p) for p in (path, site_path) if p is not None)
    return _load(Path(path), site_path, stamps)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


@lru_cache(maxsize=8)
def _load(path: Path, site_path: Path | None, _stamps: tuple[Any, ...]) -> VendorTable:
    data = _read(path)
    rules = _rules(data, path)
    manufacturers = _manufacturers(data, path)
    placeholders = _placeholders(data.get("placeholders"), str(path))
    communities = [str(c) for c in data.get("default_communities") or []]
    if site_path is not None:
        if site_path.parent.exists() and not site_path.parent.is_dir():
            raise VendorTableError(f"{site_path.parent}: vendor_dir is not a directory")
        if site_path.exists():
            site = _read(site_path)
            site_rules = _rules(site, site_path)
            replaced = {r.id for r in site_rules}
            rules = site_rules + [r for r in rules if r.id not in replaced]
            manufacturers = _manufacturers(site, site_path) + manufacturers
            for name, patterns in _placeholders(site.get("placeholders"),
                                                str(site_path)).items():
                placeholders[name] = patterns + placeholders.get(name, ())
            communities += [str(c) for c in site.get("default_communities") or []
                            if str(c) not in communities]
    return VendorTable(tuple(rules), tuple(manufacturers), tuple(communities), placeholders)


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
    out = {k: v for k, v in groups.items() if k in ALL_FIELDS}
    for name, template in (templates or {}).items():
        if name not in ALL_FIELDS:
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
    if len(entities) == 1:
        return entities[0]
    if all(e.get("class") in (None, "", "unknown") for e in entities):  # no class column
        return next((e for e in entities if e.get("model") or e.get("serial")), None)
    return None


def fields_from_entity(entity: dict[str, Any], firmware_columns: tuple[str, ...]
                       ) -> dict[str, str]:
    out = {name: entity[cols[0]].strip() for name, cols in ENTITY_FIELDS.items()
           if entity.get(cols[0]) and entity[cols[0]].strip()}
    firmware = next((entity[c] for c in firmware_columns if entity.get(c)), None)
    if firmware:
        out["firmware_version"] = firmware.strip()
    return out


def merge(sources: list[tuple[str, dict[str, str]]], rule: VendorRule | None = None
          ) -> dict[str, tuple[str, str]]:
    """``field -> (value, source)``: per field, the first source in the rule's precedence
    (default ENTITY-MIB chassis, vendor OIDs, sysDescr) that has a value."""
    by_source: dict[str, dict[str, str]] = {}
    for source, values in sources:
        for name, value in values.items():
            by_source.setdefault(source, {}).setdefault(name, value)
    merged: dict[str, tuple[str, str]] = {}
    names = {n for values in by_source.values() for n in values}
    for name in sorted(names):
        order = rule.order(name) if rule else SOURCES
        for source in (*order, *[s for s in by_source if s not in order]):
            value = by_source.get(source, {}).get(name)
            if value:
                merged[name] = (value, source)
                break
    return merged
