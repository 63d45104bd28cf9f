"""Time synchronisation: timedatectl, chronyc tracking, chrony.conf, timesyncd.conf, and the
ntp.conf of classic ntpd and ntpsec. Given an ``Issues``, a bad source line is skipped."""

from __future__ import annotations

import re

from otaudit.probes.base import ParseError
from otaudit.probes.ssh.parse.common import Issues, parser, skip_line, yes_no

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


def _server_lines(text: str, keywords: tuple[str, ...], what: str,
                  issues: Issues | None) -> list[str]:
    sources: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("!"):
            continue
        words = line.split()
        if words[0] not in keywords:
            continue
        if len(words) < 2 or not _SOURCE.fullmatch(words[1]):
            skip_line(issues, number, raw, f"bad {what} source line")
            continue
        if words[1] not in sources:
            sources.append(words[1])
    return sources


@parser
def parse_chrony_sources(text: str, issues: Issues | None = None) -> list[str]:
    """``server``/``pool``/``peer`` names of chrony.conf."""
    return _server_lines(text, ("server", "pool", "peer"), "chrony", issues)


@parser
def parse_ntp_conf_sources(text: str, issues: Issues | None = None) -> list[str]:
    """``server``/``pool``/``peer`` of ntpd's or ntpsec's ntp.conf (``127.127.x`` refclocks
    and ``fudge`` lines are local clocks, not network sources)."""
    return [s for s in _server_lines(text, ("server", "pool", "peer"), "ntp.conf", issues)
            if not s.startswith("127.127.")]


@parser
def parse_timesyncd_sources(text: str, issues: Issues | None = None,
                            key: str = "NTP") -> list[str]:
    """``NTP=`` (or ``FallbackNTP=``) servers of the [Time] section of timesyncd.conf."""
    section, sources = None, []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif section == "Time" and line.startswith(f"{key}="):
            for name in line[len(key) + 1:].split():
                if not _SOURCE.fullmatch(name):
                    skip_line(issues, number, raw, f"bad timesyncd {key} entry")
                    continue
                sources.append(name)
    return sources
