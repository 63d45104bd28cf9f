"""Text from devices made harmless for terminals and databases.

A device answers what it likes: an SNMP ``sysDescr`` with ``ESC ] 0 ; … BEL`` retitles the
terminal of whoever reads the report, a carriage return overwrites what a line said, a
right-to-left override reverses it, a NUL cannot be stored in PostgreSQL. ``device_text``
is applied where device text enters a fact (every probe, through ``Recorder.fact``);
``screen_safe`` again in every renderer, for data stored before or arriving another way.

Both write such characters as visible escapes (``\\x1b``, ``\\u202e``) rather than dropping
them, so the evidence of what the device sent stays readable.
"""

from __future__ import annotations

import re
from typing import Any

# C0 controls but tab and newline, DEL, C1 controls, Unicode's bidirectional overrides,
# embeddings, isolates and line/paragraph separators, and lone surrogates (a library that
# decodes device bytes with ``surrogateescape`` leaves them; no JSON encoder or database
# takes them).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e"
                     "\u2066-\u2069\ud800-\udfff]")
_UNSAFE_LINE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e"
                          "\u2066-\u2069\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def device_text(text: str, *, single_line: bool = False) -> str:
    """``text`` with every control character (but tab and newline, unless ``single_line``)
    and bidirectional override written as an escape."""
    pattern = _UNSAFE_LINE if single_line else _UNSAFE
    return pattern.sub(_escape, text) if pattern.search(text) else text


def storable_text(text: str) -> str:
    """``text`` with lone surrogates written as escapes (``\\udcff``), everything else as it
    is: for evidence excerpts, which keep control characters (renderers escape them)."""
    return _SURROGATE.sub(_escape, text) if _SURROGATE.search(text) else text


def device_value(value: Any) -> Any:
    """``device_text`` applied to every string in a fact value (lists, dicts, keys too)."""
    if isinstance(value, str):
        return device_text(value)
    if isinstance(value, list):
        return [device_value(v) for v in value]
    if isinstance(value, tuple):
        return tuple(device_value(v) for v in value)
    if isinstance(value, dict):
        return {device_value(k) if isinstance(k, str) else k: device_value(v)
                for k, v in value.items()}
    return value


def screen_safe(value: Any) -> Any:
    """For renderers: every string in ``value`` (report data) with control characters but
    newline and tab, and bidirectional overrides, escaped."""
    return device_value(value)
