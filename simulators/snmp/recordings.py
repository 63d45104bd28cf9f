"""Readers for the two ways people record SNMP devices.

* ``.snmprec`` (snmpsim): ``oid|tag|value`` per line; ``tag`` is the numeric BER tag,
  with an ``x`` suffix when the value is hex (``4x|00127962f940``).
* net-snmp ``snmpwalk -On`` text: ``.1.3.6... = TYPE: value`` per line, strings may run
  over several lines, ``Hex-STRING`` values too.

Both return ``{oid: pyasn1 value}``; a line that cannot be read raises
``RecordingError`` naming file and line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from otaudit.simulators.snmp.values import SNMPREC_TAGS, Oid, make_value, parse_oid


class RecordingError(ValueError):
    """A recording file line that cannot be turned into an OID and a value."""


def load_recording(path: str | Path) -> dict[Oid, Any]:
    """Read a ``.snmprec`` or ``snmpwalk -On`` file (format detected from the content)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise RecordingError(f"{path}: {exc.strerror or exc}") from None
    if _looks_like_snmprec(text):
        return parse_snmprec(text, source=str(path))
    return parse_snmpwalk(text, source=str(path))


def _looks_like_snmprec(text: str) -> bool:
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            return re.match(r"^\.?\d+(\.\d+)*\|\d+[a-z]?\|", line) is not None
    return False


# --- .snmprec -------------------------------------------------------------------------

def parse_snmprec(text: str, source: str = "<snmprec>") -> dict[Oid, Any]:
    table: dict[Oid, Any] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("|", 2)
        if len(parts) != 3:
            raise RecordingError(f"{source}:{number}: expected 'oid|tag|value'")
        oid_text, tag_text, value = parts
        try:
            oid = parse_oid(oid_text)
            table[oid] = _snmprec_value(tag_text, value)
        except ValueError as exc:
            raise RecordingError(f"{source}:{number}: {exc}") from None
    return table


def _snmprec_value(tag_text: str, value: str) -> Any:
    match = re.fullmatch(r"(\d+)(x?)", tag_text)
    if not match:
        raise ValueError(f"unsupported tag {tag_text!r} (variation modules are not supported)")
    tag, is_hex = int(match.group(1)), bool(match.group(2))
    type_name = SNMPREC_TAGS.get(tag)
    if type_name is None:
        raise ValueError(f"unsupported BER tag {tag}")
    if is_hex:
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raise ValueError(f"bad hex value {value!r}") from None
        if type_name in ("OctetString", "IpAddress", "Opaque"):
            return make_value(type_name, raw)
        raise ValueError(f"hex form is not supported for tag {tag}")
    if type_name == "OctetString":
        return make_value(type_name, value.encode("utf-8", errors="surrogateescape"))
    return make_value(type_name, value)


# --- snmpwalk -On text ----------------------------------------------------------------

_LINE = re.compile(r"^(\.?\d+(?:\.\d+)*) = (.*)$")
_TYPED = re.compile(r"^([A-Za-z][A-Za-z0-9 -]*?): ?(.*)$", re.DOTALL)
_NO_VALUE = ("No Such Object", "No Such Instance", "No more variables")
_HEX_LINE = re.compile(r"^(?:[0-9A-Fa-f]{2} ?)+$")


def parse_snmpwalk(text: str, source: str = "<snmpwalk>") -> dict[Oid, Any]:
    """Parse net-snmp's ``snmpwalk -On`` output (lines before the first OID are skipped)."""
    table: dict[Oid, Any] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        number, line = i + 1, lines[i]
        i += 1
        match = _LINE.match(line)
        if not match:
            if line.strip() and table:
                raise RecordingError(f"{source}:{number}: not an 'OID = TYPE: value' line "
                                     "(record with snmpwalk -On)")
            continue  # preamble such as "Created directory: ..."
        oid = parse_oid(match.group(1))
        rest = match.group(2)
        if _open_quote(rest):
            while i < len(lines) and _open_quote(rest):  # multi-line quoted string
                rest += "\n" + lines[i]
                i += 1
            if _open_quote(rest):
                raise RecordingError(f"{source}:{number}: unterminated quoted string")
        elif rest.startswith("Hex-STRING:"):
            while i < len(lines) and _HEX_LINE.match(lines[i].strip() or "-"):
                rest += " " + lines[i].strip()
                i += 1
        try:
            value = _walk_value(rest)
        except ValueError as exc:
            raise RecordingError(f"{source}:{number}: {exc}") from None
        if value is not None:
            table[oid] = value
    return table


def _open_quote(rest: str) -> bool:
    """True when the value starts a quoted string that is not closed yet."""
    typed = _TYPED.match(rest)
    body = typed.group(2) if typed else rest
    if not body.startswith('"'):
        return False
    quotes, escaped = 0, False
    for ch in body:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quotes += 1
    return quotes % 2 == 1


def _unquote(text: str) -> bytes:
    if len(text) >= 2 and text.startswith('"') and text.endswith('"'):
        text = text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return text.encode("utf-8", errors="surrogateescape")


def _walk_value(rest: str) -> Any:
    if rest == '""':
        return make_value("OctetString", b"")
    if any(rest.startswith(marker) for marker in _NO_VALUE):
        return None
    if rest == "NULL":
        return make_value("Null", None)
    typed = _TYPED.match(rest)
    if not typed:
        raise ValueError(f"unreadable value {rest[:60]!r}")
    kind, value = typed.group(1), typed.group(2).strip()
    if kind == "STRING":
        return make_value("OctetString", _unquote(value))
    if kind in ("Hex-STRING", "BITS"):
        hex_part = re.match(r"^((?:[0-9A-Fa-f]{2}\s*)*)", value).group(1)
        return make_value("OctetString", bytes.fromhex(hex_part))
    if kind == "OID":
        return make_value("ObjectIdentifier", value)
    if kind == "INTEGER":
        named = re.search(r"\((-?\d+)\)\s*$", value)
        return make_value("Integer", named.group(1) if named else _leading_int(value))
    if kind == "Timeticks":
        ticks = re.match(r"^\((\d+)\)", value)
        return make_value("TimeTicks", ticks.group(1) if ticks else _leading_int(value))
    if kind in ("Counter32", "Gauge32", "Counter64", "Unsigned32", "UInteger32"):
        type_name = {"Unsigned32": "Gauge32", "UInteger32": "Gauge32"}.get(kind, kind)
        return make_value(type_name, _leading_int(value))
    if kind == "IpAddress":
        return make_value("IpAddress", value)
    if kind == "Network Address":
        return make_value("IpAddress", bytes.fromhex(value.replace(":", "")))
    if kind == "Opaque":
        return make_value("Opaque", value.encode())
    raise ValueError(f"unsupported snmpwalk type {kind!r}")


def _leading_int(text: str) -> int:
    match = re.match(r"^-?\d+", text.strip())
    if not match:
        raise ValueError(f"expected a number, got {text[:40]!r}")
    return int(match.group(0))
