"""The agent's data: an ordered OID table of SNMP values (pysnmp/pyasn1 objects).

Values are built from the names used in profiles (``OctetString``, ``Counter32`` ...)
or from the numeric BER tags of snmpsim's ``.snmprec`` format. A value may also be a
callable (``sysUpTime`` counts from the agent start), evaluated on every read.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from typing import Any

from pysnmp.proto.api import v2c

Oid = tuple[int, ...]
Value = Any  # a pyasn1 value object, or a zero-argument callable returning one

_BUILDERS: dict[str, Callable[[Any], Any]] = {
    "Integer": lambda v: v2c.Integer32(int(v)),
    "OctetString": lambda v: v2c.OctetString(v if isinstance(v, bytes) else str(v).encode()),
    "HexString": lambda v: v2c.OctetString(hexValue=str(v).replace(" ", "").replace(":", "")),
    "ObjectIdentifier": lambda v: v2c.ObjectIdentifier(_sendable_oid(str(v))),
    "IpAddress": lambda v: v2c.IpAddress(v if isinstance(v, bytes) else str(v)),
    "Counter32": lambda v: v2c.Counter32(int(v)),
    "Gauge32": lambda v: v2c.Gauge32(int(v)),
    "TimeTicks": lambda v: v2c.TimeTicks(int(v)),
    "Opaque": lambda v: v2c.Opaque(v if isinstance(v, bytes) else bytes.fromhex(str(v))),
    "Counter64": lambda v: v2c.Counter64(int(v)),
    "Null": lambda v: v2c.Null(""),
}
TYPE_NAMES = tuple(_BUILDERS)

# snmpsim .snmprec: numeric BER tag (universal or application class) -> type name
SNMPREC_TAGS: dict[int, str] = {
    2: "Integer", 4: "OctetString", 5: "Null", 6: "ObjectIdentifier", 64: "IpAddress",
    65: "Counter32", 66: "Gauge32", 67: "TimeTicks", 68: "Opaque", 70: "Counter64",
}


def parse_oid(text: str) -> Oid:
    """``'.1.3.6.1'`` or ``'1.3.6.1'`` -> ``(1, 3, 6, 1)``; ValueError otherwise."""
    parts = text.strip().lstrip(".").split(".")
    if not parts or not all(p.isascii() and p.isdigit() for p in parts):
        raise ValueError(f"not a numeric OID: {text!r}")
    return tuple(int(p) for p in parts)


def _sendable_oid(text: str) -> Oid:
    """An OID value BER can carry: two arcs at least, the first 0-2 (``0`` alone cannot)."""
    oid = parse_oid(text)
    if len(oid) < 2 or oid[0] > 2 or (oid[0] < 2 and oid[1] > 39):
        raise ValueError(f"OID value {text!r} cannot be encoded (needs two arcs, 0.x-2.x)")
    return oid


def make_value(type_name: str, value: Any) -> Any:
    """Build a pyasn1 value from a profile type name; ValueError on bad input."""
    try:
        builder = _BUILDERS[type_name]
    except KeyError:
        raise ValueError(f"unknown SNMP type {type_name!r}; known: {', '.join(TYPE_NAMES)}") \
            from None
    try:
        return builder(value)
    except Exception as exc:  # pyasn1 raises its own error classes
        raise ValueError(f"bad {type_name} value {value!r}: {exc}") from None


class OidTable:
    """Sorted OID -> value map with the two lookups an agent needs."""

    def __init__(self, items: Iterable[tuple[Oid, Value]] = ()) -> None:
        self._data: dict[Oid, Value] = dict(items)
        self._keys: list[Oid] = sorted(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, oid: object) -> bool:
        return oid in self._data

    def set(self, oid: Oid, value: Value) -> None:
        if oid not in self._data:
            bisect.insort(self._keys, oid)
        self._data[oid] = value

    def update(self, items: Iterable[tuple[Oid, Value]]) -> None:
        for oid, value in items:
            self.set(oid, value)

    def get(self, oid: Oid) -> Any | None:
        value = self._data.get(oid)
        return value() if callable(value) else value

    def keys_after(self, oid: Oid) -> Iterable[Oid]:
        """OIDs strictly greater than ``oid``, in order."""
        keys = self._keys
        for i in range(bisect.bisect_right(keys, oid), len(keys)):
            yield keys[i]

    def items(self) -> Iterable[tuple[Oid, Any]]:
        for oid in self._keys:
            yield oid, self.get(oid)
