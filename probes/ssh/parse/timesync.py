"""Time synchronisation: timedatectl, chronyc tracking, chrony.conf, timesyncd.conf."""

from __future__ import annotations

import re

from otaudit.probes.base import ParseError
from otaudit.probes.ssh.parse.common import config_lines, parser, yes_no

_SOURCE = re.compile(r"[A-Za-z0-9_.:%\[\]-]{1,253}")


@parser
def parse_timedatectl_show(text: str) -> dict[str, str]:
    """``Key=value`` lines; needs ``NTPSynchronized``."""
    values = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", key):
            raise ParseError(f"not timedatectl show output: {line[:60]!r}")
        values[key] = value
    if "NTPSynchronized" not in values:
        raise ParseError("timedatectl show lacks NTPSynchronized")
    return values


@parser
def timedatectl_synchronized(values: dict[str, str]) -> bool:
    return yes_no(values["NTPSynchronized"], "NTPSynchronized")


@parser
def parse_chronyc_tracking(text: str) -> bool:
    """Whether chronyd reports a synchronised clock."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    if "Leap status" not in fields:
        raise ParseError("chronyc tracking output lacks 'Leap status'")
    reference = fields.get("Reference ID", "")
    return fields["Leap status"] != "Not synchronised" and not reference.startswith("00000000")


@parser
def parse_chrony_sources(text: str) -> list[str]:
    """``server``/``pool``/``peer`` names of chrony.conf."""
    sources = []
    for line in config_lines(text):
        if line.startswith("!"):
            continue
        words = line.split()
        if words[0] in ("server", "pool", "peer"):
            if len(words) < 2 or not _SOURCE.fullmatch(words[1]):
                raise ParseError(f"bad chrony source line {line[:60]!r}")
            sources.append(words[1])
    return sources


@parser
def parse_timesyncd_sources(text: str) -> list[str]:
    """``NTP=`` servers of the [Time] section of timesyncd.conf."""
    section, sources = None, []
    for line in config_lines(text):
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif section == "Time" and line.startswith("NTP="):
            for name in line[4:].split():
                if not _SOURCE.fullmatch(name):
                    raise ParseError(f"bad timesyncd NTP entry {name[:40]!r}")
                sources.append(name)
    return sources
