"""Symbolic OIDs of snmpwalk output (``IF-MIB::ifDescr.3``, ``iso.3.6.1...``) to numbers.

Names come from pysnmp's bundled MIBs, then ``oid_names.yaml`` (standard MIBs pysnmp
does not ship); a name neither knows is unresolvable and the caller lists it. Indexes
follow net-snmp's printing: numbers, ``"text"`` (length-prefixed), ``'text'`` (IMPLIED),
and InetAddress pairs ``ipv4."10.0.0.1"`` / ``ipv6."fe80::1"``.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from pathlib import Path

import yaml

from otaudit.simulators.snmp.values import Oid

NAMES_FILE = Path(__file__).with_name("oid_names.yaml")
_SYMBOL = re.compile(r"^(?:(?P<module>[A-Za-z][\w-]*)::)?(?P<name>[A-Za-z][\w-]*)(?P<index>.*)$")
_INDEX = re.compile(r"""\.(?:"(?P<q>(?:[^"\\]|\\.)*)"|'(?P<i>(?:[^'\\]|\\.)*)'|(?P<n>\d+)"""
                    r"""|(?P<w>[A-Za-z][\w-]*))""")
INET_TYPES = {"unknown": 0, "ipv4": 1, "ipv6": 2, "ipv4z": 3, "ipv6z": 4, "dns": 16}
ROOTS = {"iso": (1,), "ccitt": (0,), "joint-iso-ccitt": (2,)}


class Unresolved(ValueError):
    """A symbolic name or index that cannot be turned into numbers."""


@lru_cache(maxsize=1)
def _pysnmp_symbols() -> dict[str, dict[str, Oid]]:
    """module -> name -> OID of every named node in pysnmp's bundled MIBs."""
    from pysnmp.smi import builder

    mib = builder.MibBuilder()
    mib.load_modules()
    out: dict[str, dict[str, Oid]] = {}
    for module, symbols in mib.mibSymbols.items():
        for name, node in symbols.items():
            if isinstance(node, type) or not callable(getattr(node, "getName", None)):
                continue  # a type (textual convention), not a node of the tree
            oid = node.getName()
            if isinstance(oid, tuple) and oid and all(isinstance(p, int) for p in oid):
                out.setdefault(module, {})[name] = oid
    return out


@lru_cache(maxsize=1)
def _table() -> dict[str, dict[str, Oid]]:
    """pysnmp's names with oid_names.yaml merged in."""
    merged = {module: dict(names) for module, names in _pysnmp_symbols().items()}
    for key, oid in (yaml.safe_load(NAMES_FILE.read_text()) or {}).items():
        module, _, name = str(key).partition("::")
        merged.setdefault(module, {})[name] = tuple(int(p) for p in str(oid).split("."))
    return merged


@lru_cache(maxsize=1)
def _by_name() -> dict[str, set[Oid]]:
    out: dict[str, set[Oid]] = {}
    for names in _table().values():
        for name, oid in names.items():
            out.setdefault(name, set()).add(oid)
    return out


def base_oid(module: str | None, name: str) -> Oid:
    """The OID of ``MODULE::name`` (or of ``name`` when it is unique across modules)."""
    if module is None and name in ROOTS:
        return ROOTS[name]
    table = _table()
    if module is not None and name in table.get(module, {}):
        return table[module][name]
    candidates = _by_name().get(name, set())
    if len(candidates) == 1:
        return next(iter(candidates))
    where = f"{module}::{name}" if module else name
    if candidates:
        raise Unresolved(f"{where} is ambiguous without its MIB")
    raise Unresolved(f"{where} is not in pysnmp's MIBs nor in {NAMES_FILE.name}")


def _unescape(text: str) -> bytes:
    return re.sub(r"\\(.)", r"\1", text).encode("utf-8", errors="surrogateescape")


def index_oid(index: str) -> Oid:
    """net-snmp's printed index (``.1``, ``."public"``, ``.ipv4."10.0.0.1".22``) as numbers."""
    out: list[int] = []
    pos = 0
    inet: str | None = None
    while pos < len(index):
        match = _INDEX.match(index, pos)
        if not match:
            raise Unresolved(f"unreadable index {index[pos:pos + 30]!r}")
        pos = match.end()
        if match.group("n") is not None:
            out.append(int(match.group("n")))
        elif match.group("w") is not None:
            word = match.group("w")
            if word not in INET_TYPES:
                raise Unresolved(f"index value {word!r} needs its MIB's enumeration")
            out.append(INET_TYPES[word])
            inet = word
            continue
        elif match.group("i") is not None:
            out.extend(_unescape(match.group("i")))
        else:
            text = match.group("q")
            if inet in ("ipv4", "ipv6", "ipv4z", "ipv6z"):
                try:
                    packed = ipaddress.ip_address(text.split("%")[0]).packed
                except ValueError:
                    raise Unresolved(f"{text!r} is not an {inet} address") from None
            else:
                packed = _unescape(text)
            out.extend((len(packed), *packed))
        inet = None
    return tuple(out)


def resolve(text: str) -> Oid:
    """A numeric (``.1.3.6.1``) or symbolic (``SNMPv2-MIB::sysDescr.0``) OID; Unresolved."""
    text = text.strip()
    if re.fullmatch(r"\.?\d+(?:\.\d+)*", text):
        return tuple(int(p) for p in text.lstrip(".").split("."))
    match = _SYMBOL.match(text)
    if not match:
        raise Unresolved(f"not an OID: {text[:60]!r}")
    return base_oid(match.group("module"), match.group("name")) + index_oid(match.group("index"))
