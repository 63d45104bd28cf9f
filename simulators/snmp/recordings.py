"""Readers for the ways people record SNMP devices.

* ``.snmprec`` (snmpsim): ``oid|tag|value`` per line; ``tag`` is the numeric BER tag,
  with an ``x`` suffix when the value is hex (``4x|00127962f940``).
* net-snmp ``snmpwalk`` text: ``OID = TYPE: value`` per line, with numeric OIDs (``-On``,
  or ``iso.3.6...`` when no MIBs are installed) or symbolic ones (``-m ALL``:
  ``SNMPv2-MIB::sysDescr.0``, resolved by ``names.py``). Strings may run over several
  lines (quoted, or unquoted after a display hint), ``Hex-STRING`` values too.

Lines are split on LF only (values may hold a vertical tab or form feed) and a trailing
CR is dropped. A reader collects every problem: unreadable lines are an error naming
their count and the first examples (``RecordingError``) unless the caller accepts
skipping them; symbolic names that no MIB resolves are listed on the ``Recording``;
a file that yields no OID at all is always an error.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from otaudit.simulators.snmp.names import Unresolved, resolve
from otaudit.simulators.snmp.values import SNMPREC_TAGS, Oid, make_value, parse_oid

log = logging.getLogger(__name__)
EXAMPLES = 5


class RecordingError(ValueError):
    """A recording file line that cannot be turned into an OID and a value."""


@dataclass
class Recording:
    """What a recording file yielded, and what it could not."""

    source: str
    table: dict[Oid, Any] = field(default_factory=dict)
    bad_lines: list[str] = field(default_factory=list)  # "source:N: why"
    unresolved: list[str] = field(default_factory=list)  # "source:N: NAME: why"

    def bad(self, number: int, why: str) -> None:
        self.bad_lines.append(f"{self.source}:{number}: {why}")

    def check(self, skip_bad_lines: bool = False) -> dict[Oid, Any]:
        """The table; RecordingError for bad lines (unless skipped) or an empty table."""
        if self.bad_lines and not skip_bad_lines:
            raise RecordingError(_summary(self.source, self.bad_lines, "could not be read"))
        if not self.table:
            why = (f"; {_summary(self.source, self.unresolved, 'name an OID no MIB resolves')}"
                   if self.unresolved else "")
            raise RecordingError(f"{self.source}: the file yields no OID (expected .snmprec "
                                 f"'oid|tag|value' or snmpwalk 'OID = TYPE: value' lines){why}")
        return self.table

    def notes(self) -> list[str]:
        out = []
        if self.bad_lines:
            out.append(_summary(self.source, self.bad_lines, "could not be read and were skipped"))
        if self.unresolved:
            out.append(_summary(self.source, self.unresolved,
                                "name an OID no MIB resolves and were skipped (record with "
                                "snmpwalk -On to keep them)"))
        return out


def _summary(source: str, problems: list[str], what: str) -> str:
    first = "; ".join(problems[:EXAMPLES])
    more = f" (and {len(problems) - EXAMPLES} more)" if len(problems) > EXAMPLES else ""
    return f"{source}: {len(problems)} line(s) {what}: {first}{more}"


def read_recording(path: str | Path) -> Recording:
    """Read a ``.snmprec`` or ``snmpwalk`` file (format detected from the content)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise RecordingError(f"{path}: {exc.strerror or exc}") from None
    if _looks_like_snmprec(text):
        return read_snmprec(text, source=str(path))
    return read_snmpwalk(text, source=str(path))


def load_recording(path: str | Path, skip_bad_lines: bool = False) -> dict[Oid, Any]:
    """The OID table of a recording; RecordingError as ``Recording.check``. Names that no
    MIB resolves (and skipped lines) are logged as a warning with their first examples."""
    recording = read_recording(path)
    table = recording.check(skip_bad_lines)
    for note in recording.notes():
        log.warning("%s", note)
    return table


def _lines(text: str) -> list[str]:
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]


def _looks_like_snmprec(text: str) -> bool:
    for line in _lines(text):
        if line.strip() and not line.startswith("#"):
            return re.match(r"^\.?\d+(\.\d+)*\|\d+[a-z]?\|", line) is not None
    return False


# --- .snmprec -------------------------------------------------------------------------

def parse_snmprec(text: str, source: str = "<snmprec>") -> dict[Oid, Any]:
    """The table of a ``.snmprec`` text; RecordingError for any bad line."""
    recording = read_snmprec(text, source)
    if recording.bad_lines:
        raise RecordingError(_summary(source, recording.bad_lines, "could not be read"))
    return recording.table


def read_snmprec(text: str, source: str = "<snmprec>") -> Recording:
    recording = Recording(source)
    for number, line in enumerate(_lines(text), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("|", 2)
        if len(parts) != 3:
            recording.bad(number, "expected 'oid|tag|value'")
            continue
        oid_text, tag_text, value = parts
        try:
            oid = parse_oid(oid_text)
            recording.table[oid] = _snmprec_value(tag_text, value)
        except ValueError as exc:
            recording.bad(number, str(exc))
    return recording


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


# --- snmpwalk text (numeric or symbolic OIDs) ----------------------------------------

_LINE = re.compile(r"^(\.?\d+(?:\.\d+)*|[A-Za-z][\w-]*(?:::[A-Za-z][\w-]*)?(?:\.\S*)?)"
                   r" = (.*)$")
_TYPED = re.compile(r"^([A-Za-z][A-Za-z0-9 -]*?): ?(.*)$", re.DOTALL)
_WRONG_TYPE = re.compile(r"^Wrong Type \(should be [^)]*\): ")
_NO_VALUE = ("No Such Object", "No Such Instance", "No more variables")
_HEX_LINE = re.compile(r"^(?:[0-9A-Fa-f]{2} ?)+$")


def parse_snmpwalk(text: str, source: str = "<snmpwalk>") -> dict[Oid, Any]:
    """The table of ``snmpwalk`` text; RecordingError for any bad or unresolved line."""
    recording = read_snmpwalk(text, source)
    problems = recording.bad_lines + recording.unresolved
    if problems:
        raise RecordingError(_summary(source, problems, "could not be read"))
    return recording.table


def read_snmpwalk(text: str, source: str = "<snmpwalk>") -> Recording:
    """Read net-snmp ``snmpwalk`` output (lines before the first OID line are skipped)."""
    recording = Recording(source)
    lines = _lines(text)
    seen_oid_line = False
    i = 0
    while i < len(lines):
        number, line = i + 1, lines[i]
        i += 1
        match = _LINE.match(line)
        if not match:
            if line.strip() and seen_oid_line:
                recording.bad(number, "not an 'OID = TYPE: value' line")
            continue  # preamble such as "Created directory: ..."
        seen_oid_line = True
        rest = _WRONG_TYPE.sub("", match.group(2))
        if _open_quote(rest):
            while i < len(lines) and _open_quote(rest):  # multi-line quoted string
                rest += "\n" + lines[i]
                i += 1
            if _open_quote(rest):
                recording.bad(number, "unterminated quoted string")
                continue
        elif rest.startswith("Hex-STRING:"):
            while i < len(lines) and _HEX_LINE.match(lines[i].strip() or "-"):
                rest += " " + lines[i].strip()
                i += 1
        elif rest.startswith("STRING:") and not rest[7:].lstrip().startswith('"'):
            while i < len(lines) and not _LINE.match(lines[i]):  # unquoted, display hint
                rest += "\n" + lines[i]
                i += 1
            rest = rest.rstrip("\n")
        try:
            oid = resolve(match.group(1))
            value = _walk_value(rest)
        except Unresolved as exc:
            recording.unresolved.append(f"{source}:{number}: {exc}")
            continue
        except ValueError as exc:
            recording.bad(number, str(exc))
            continue
        if value is not None:
            recording.table[oid] = value
    return recording


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
    if kind == "OID":
        return make_value("ObjectIdentifier", ".".join(map(str, resolve(value))))
    if kind in ("Hex-STRING", "BITS"):
        hex_part = re.match(r"^((?:[0-9A-Fa-f]{2}\s*)*)", value).group(1)
        return make_value("OctetString", bytes.fromhex(hex_part))
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
