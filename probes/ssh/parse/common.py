"""Helpers shared by the output parsers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from otaudit.probes.base import ParseError

_ALLOWED_CONTROL = {"\t", "\n", "\r"}


def decode_text(raw: bytes | str, what: str = "output") -> str:
    """UTF-8 text of a command output; binary garbage raises ``ParseError``."""
    if isinstance(raw, str):
        text = raw
    else:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError(f"{what} is not UTF-8 text (byte {exc.start})") from None
    for i, char in enumerate(text):
        if (ord(char) < 32 or 0x7F <= ord(char) < 0xA0) and char not in _ALLOWED_CONTROL:
            raise ParseError(f"{what} contains control character 0x{ord(char):02x} at {i}")
    return text


def config_lines(text: str, comment: str = "#") -> list[str]:
    """Non-empty lines with whole-line comments removed, stripped."""
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith(comment):
            lines.append(stripped)
    return lines


def to_int(value: str, what: str) -> int:
    """Integer from a config value; ``ParseError`` when it is not one."""
    if not re.fullmatch(r"[+-]?\d{1,12}", value.strip()):
        raise ParseError(f"{what}: {value[:40]!r} is not an integer")
    return int(value.strip())


def yes_no(value: str, what: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("yes", "true", "on", "1"):
        return True
    if lowered in ("no", "false", "off", "0"):
        return False
    raise ParseError(f"{what}: {value[:40]!r} is neither yes nor no")


@dataclass
class Issues:
    """Lines a parser skipped: one bad line makes only its own values unknown.

    A parser given an ``Issues`` records a line it cannot read (number, text, why) and
    goes on with the rest; given none, it raises ``ParseError`` at that line (strict).
    """

    items: list[tuple[int, str, str]] = field(default_factory=list)

    def skip(self, number: int, line: str, why: str) -> None:
        self.items.append((number, line.strip()[:200], why))


def skip_line(issues: Issues | None, number: int, line: str, why: str) -> None:
    """Record a bad line in ``issues``, or raise ``ParseError`` when parsing strictly."""
    if issues is None:
        raise ParseError(f"line {number}: {why}: {line.strip()[:60]!r}")
    issues.skip(number, line, why)


ISSUES = "__issues__"  # key of a group result: {command: Issues}


class Unknown:
    """A fact the output does not settle, with the reason (recorded as unknown)."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"Unknown({self.reason!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Unknown) and other.reason == self.reason

    def __hash__(self) -> int:
        return hash(self.reason)


DEFAULT_COMMUNITIES = frozenset({
    "public", "private", "community", "cisco", "admin", "manager", "secret", "snmp",
    "snmpd", "read", "write", "monitor", "default", "system", "all", "ILMI", "netman",
    "security", "switch", "router", "tivoli", "openview", "root",
})
_SECRET_WORDS = {"password", "secret", "key", "key-string", "community", "md5", "sha",
                 "auth-key", "priv-key", "passphrase"}


def community_ref(name: str) -> dict[str, object]:
    """An SNMP community as stored in facts: SHA-256 prefix and well-known flag, never the name."""
    import hashlib

    return {"name_hash": hashlib.sha256(name.encode()).hexdigest()[:12],
            "default": name in DEFAULT_COMMUNITIES}


_COMMUNITY_LINE = re.compile(r"^(\s*snmp(?:-server)? community (?:(?:ro|rw|RO|RW) )?)"
                             r"(\S+)(.*)$")


def redact_secrets(text: str, keep: frozenset[str] = frozenset()) -> str:
    """Config text with its secrets replaced by ``<removed>`` (evidence, recordings).

    A community line keeps its access level and ACL (``snmp-server community <removed> RO
    99``, HiOS ``snmp community ro <removed>``), so the redacted text still parses; any
    other line loses everything after its secret keyword. Community names in ``keep`` (the
    well-known defaults, when recording) are left as they are.
    """
    out = []
    for raw in text.splitlines(keepends=True):
        line = (raw.splitlines() or [""])[0]
        ending = raw[len(line):]
        host = re.match(r"(\s*snmp-server host \S+)", line)
        if host:  # the community follows the host and options: drop everything after the host
            out.append(f"{host[1]} <removed>{ending}")
            continue
        community = _COMMUNITY_LINE.match(line)
        if community:
            name = community[2]
            if name.strip('"') not in keep:
                name = '"<removed>"' if name.startswith('"') else "<removed>"
            out.append(f"{community[1]}{name}{community[3]}{ending}")
            continue
        words = line.split(" ")
        for i, word in enumerate(words):
            if word.lower() in _SECRET_WORDS and i + 1 < len(words):
                keep_upto = i + 1
                if words[keep_upto].isdigit() and len(words[keep_upto]) == 1 \
                        and keep_upto + 1 < len(words):
                    keep_upto += 1
                line = " ".join([*words[:keep_upto], "<removed>"])
                break
        out.append(line + ending)
    return "".join(out)


def parser(func):
    """Decorator: a slip on malformed input (IndexError, KeyError, ValueError) → ParseError."""
    import functools

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except ParseError:
            raise
        except (IndexError, KeyError, ValueError) as exc:
            raise ParseError(f"{func.__name__}: malformed input ({type(exc).__name__})") from None

    return wrapper
