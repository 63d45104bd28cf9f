"""Listening sockets (``ss -tlnupH``), packages (``dpkg-query -W``), enabled units."""

from __future__ import annotations

import re

from otaudit.probes.base import ParseError
from otaudit.probes.ssh.parse.common import parser

_PROCESS = re.compile(r'users:\(\("([^"]{1,64})"')
_UNIT = re.compile(r"[A-Za-z0-9_.@:\\-]{1,255}\.(service|socket|timer|target|path|mount)")
_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]{0,127}")


def _split_address(value: str) -> tuple[str, int | None]:
    address, sep, port = value.rpartition(":")
    if not sep or not address:
        raise ParseError(f"socket address without port: {value[:60]!r}")
    if address.startswith("[") and address.endswith("]"):
        address = address[1:-1]
    address = address.split("%", 1)[0]
    if not re.fullmatch(r"[0-9A-Fa-f:.*]{1,45}", address):
        raise ParseError(f"implausible listening address {address[:60]!r}")
    if port == "*":
        return address, None
    if not port.isdigit() or not 0 <= int(port) < 65536:
        raise ParseError(f"implausible port {port[:10]!r}")
    return address, int(port)


@parser
def parse_ss(text: str) -> list[dict[str, object]]:
    """Rows ``{proto, address, port, process}`` of ``ss -tlnupH`` (process may be None)."""
    rows = []
    for line in text.splitlines():
        words = line.split()
        if not words or words[0] == "Netid":
            continue
        if len(words) < 6 or words[0] not in ("tcp", "udp", "sctp", "raw", "u_str", "u_dgr"):
            raise ParseError(f"not ss output: {line[:60]!r}")
        if words[0] not in ("tcp", "udp", "sctp"):
            continue
        address, port = _split_address(words[4])
        process = _PROCESS.search(line)
        rows.append({"proto": words[0], "address": address, "port": port,
                     "process": process[1] if process else None})
    return rows


@parser
def parse_dpkg_query(text: str) -> list[dict[str, str]]:
    """Installed packages ``{name, version}`` from ``dpkg-query -W`` (``name<TAB>version``)."""
    packages = []
    for line in text.splitlines():
        if not line.strip():
            continue
        name, sep, version = line.partition("\t")
        name = name.split(":", 1)[0]
        if not sep or not _PACKAGE.fullmatch(name):
            raise ParseError(f"not dpkg-query -W output: {line[:60]!r}")
        version = version.strip()
        if not version:  # known to dpkg but not installed (e.g. config-files)
            continue
        if not re.fullmatch(r"[0-9][A-Za-z0-9.+~:-]{0,127}|[0-9]+:[A-Za-z0-9.+~:-]{1,127}",
                            version):
            raise ParseError(f"implausible version {version[:40]!r} of {name}")
        packages.append({"name": name, "version": version})
    return packages


@parser
def parse_enabled_units(text: str) -> list[str]:
    """Unit names of ``systemctl list-unit-files --state=enabled --no-legend``."""
    units = []
    for line in text.splitlines():
        words = line.split()
        if not words or re.fullmatch(r"\d+ unit files listed\.", line.strip()):
            continue
        if words[0] == "UNIT":
            continue
        if not _UNIT.fullmatch(words[0]):
            raise ParseError(f"not a unit file line: {line[:60]!r}")
        units.append(words[0])
    return units
