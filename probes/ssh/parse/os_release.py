"""``cat /etc/os-release`` and ``uname -a``."""

from __future__ import annotations

import re
import shlex

from otaudit.probes.base import ParseError
from otaudit.probes.ssh.parse.common import config_lines, parser

VENDORS = {"debian": "Debian", "ubuntu": "Canonical", "rhel": "Red Hat", "centos": "CentOS",
           "rocky": "Rocky Enterprise Software Foundation", "almalinux": "AlmaLinux",
           "sles": "SUSE", "opensuse-leap": "SUSE", "fedora": "Fedora Project",
           "raspbian": "Raspberry Pi", "poky": "Yocto Project", "alpine": "Alpine Linux"}


@parser
def parse_os_release(text: str) -> dict[str, str]:
    """KEY=value pairs (shell quoting); needs at least NAME, ID or PRETTY_NAME."""
    values: dict[str, str] = {}
    for line in config_lines(text):
        match = re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", line)
        if not match:
            raise ParseError(f"os-release line is not KEY=value: {line[:60]!r}")
        try:
            words = shlex.split(match[2]) if match[2] else [""]
        except ValueError as exc:
            raise ParseError(f"os-release {match[1]}: {exc}") from None
        values[match[1]] = " ".join(words)
    if not {"NAME", "ID", "PRETTY_NAME"} & values.keys():
        raise ParseError("os-release has none of NAME, ID, PRETTY_NAME")
    return values


@parser
def os_identity(values: dict[str, str]) -> dict[str, str]:
    """Fact values from os-release: os.name, os.version, identity.os, identity.vendor."""
    facts = {}
    name = values.get("NAME") or values.get("ID")
    if name:
        facts["os.name"] = name
    version = values.get("VERSION_ID") or values.get("VERSION")
    if version:
        facts["os.version"] = version
    pretty = values.get("PRETTY_NAME") or " ".join(filter(None, [name, values.get("VERSION")]))
    if pretty:
        facts["identity.os"] = pretty
    vendor = VENDORS.get(values.get("ID", "").lower())
    if vendor:
        facts["identity.vendor"] = vendor
    return facts


@parser
def parse_uname(text: str) -> tuple[str, str, str]:
    """``uname -a`` → (kernel name, node name, kernel release)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        raise ParseError(f"uname -a printed {len(lines)} lines, expected 1")
    words = lines[0].split()
    if len(words) < 3 or not re.fullmatch(r"[A-Za-z][\w/-]*", words[0]):
        raise ParseError(f"not uname -a output: {lines[0][:60]!r}")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]{0,253}", words[1]):
        raise ParseError(f"implausible host name {words[1][:60]!r}")
    return words[0], words[1], words[2]
