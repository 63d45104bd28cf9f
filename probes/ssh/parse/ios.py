"""Cisco IOS / IOS-XE / IE: ``show version`` and ``show running-config``.

Defaults that depend on the release (``ios_defaults.yaml``) are applied with the device's
own release (``show version``, else the config's ``version`` line).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

from otaudit.probes.base import ParseError
from otaudit.probes.ssh.parse.common import (
    Issues,
    Unknown,
    community_ref,
    parser,
    skip_line,
)

DEFAULTS_FILE = Path(__file__).resolve().parents[1] / "ios_defaults.yaml"


@cache
def _defaults() -> dict[str, list[tuple[re.Pattern[str], object, str]]]:
    data = yaml.safe_load(DEFAULTS_FILE.read_text())
    return {name: [(re.compile(e["releases"]), e["value"], e["source"]) for e in entries]
            for name, entries in data.items()}


def release_default(setting: str, release: str | None) -> tuple[object, str] | None:
    """(value, source) of ``setting`` for ``release``, or None when no entry covers it."""
    if not release:
        return None
    for pattern, value, source in _defaults().get(setting, []):
        if pattern.search(release):
            return value, source
    return None

_PHYSICAL = re.compile(
    r"(Ethernet|FastEthernet|GigabitEthernet|TwoGigabitEthernet|FiveGigabitEthernet|"
    r"TenGigabitEthernet|TwentyFiveGigE|FortyGigabitEthernet|HundredGigE)\d+(/\d+)*")
_IN_USE = ("description", "switchport access vlan", "switchport mode trunk", "switchport trunk",
           "ip address", "ipv6 address", "channel-group", "switchport voice vlan")
_BANNERS = ("login", "motd", "exec", "incoming", "slip-ppp", "prompt-timeout", "config-save")


@dataclass
class Block:
    """A top-level configuration line and its indented children (stripped)."""

    line: str
    children: list[str] = field(default_factory=list)
    number: int = 0  # line number in the output


def _first(text: str, *patterns: str) -> str | None:
    for pattern in patterns:
        if match := re.search(pattern, text, re.M):
            return match[1]
    return None


@parser
def parse_show_version(text: str) -> dict[str, str]:
    """version, hostname, model, serial, image (those present)."""
    # The "Cisco IOS Software ..., Version 16.9.3" line: IOS-XE's first line pads the same
    # release ("Cisco IOS XE Software, Version 16.09.03") or names a special build.
    version = _first(text, r"^.*Cisco IOS Software.*?Version ([^\s,]+)",
                     r"^.*(?:Cisco IOS|IOS \(tm\)|IOS-XE).*?Version ([^\s,]+)")
    if version is None:
        raise ParseError("no 'Cisco IOS ... Version' line: not IOS show version output")
    found = {
        "version": version,
        "hostname": _first(text, r"^(\S+) uptime is "),
        "model": _first(text, r"^Model [Nn]umber\s*:\s*(\S+)",
                        r"^[Cc]isco (\S+) \(.*\) processor",
                        r"^[Cc]isco (\S+) \(revision [^)]*\) with"),
        "serial": _first(text, r"^System [Ss]erial [Nn]umber\s*:\s*(\S+)",
                         r"^Processor board ID ([^\s,]+)"),
        "image": _first(text, r'^System image file is "([^"]+)"'),
    }
    return {k: v for k, v in found.items() if v}


@parser
def parse_running_config(text: str) -> list[Block]:
    """Top-level blocks of an IOS running-config; banners keep their text as children."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        i += 1
        if (not line.strip() or line.startswith("!") or line.startswith("Building configuration")
                or line.startswith("Current configuration")):
            continue
        if line[0] in " \t":
            if not blocks:
                raise ParseError(f"indented line before any section: {line[:60]!r}")
            if not line.strip().startswith("!"):
                blocks[-1].children.append(line.strip())
            continue
        words = line.split()
        if words[0] == "banner" and len(words) >= 2 and words[1] in _BANNERS:
            rest = line.split(None, 2)[2] if len(words) > 2 else ""
            if not rest:
                raise ParseError(f"banner without delimiter: {line[:60]!r}")
            delim = "^C" if rest.startswith("^C") else rest[0]
            body = rest[len(delim):]
            block = Block(f"banner {words[1]}", number=i)
            while delim not in body:
                if body:
                    block.children.append(body)
                if i >= len(lines):
                    raise ParseError(f"unterminated banner {words[1]}")
                body = lines[i]
                i += 1
            if body.split(delim, 1)[0]:
                block.children.append(body.split(delim, 1)[0])
            blocks.append(block)
            continue
        blocks.append(Block(line, number=i))
    if not any(b.line.startswith(("hostname", "version ", "interface ", "end")) for b in blocks):
        raise ParseError("no hostname/version/interface/end line: not an IOS running-config")
    return blocks


def _each(blocks: list[Block], issues: Issues | None, read) -> list:  # type: ignore[no-untyped-def]
    """``read(block)`` for every block; a block it cannot read is skipped (listed)."""
    out = []
    for block in blocks:
        try:
            value = read(block)
        except (ParseError, IndexError, ValueError) as exc:
            skip_line(issues, block.number, block.line, str(exc) or type(exc).__name__)
            continue
        if value is not None:
            out.append(value)
    return out


def _top(blocks: list[Block], *prefixes: str) -> list[Block]:
    return [b for b in blocks if b.line.startswith(prefixes)]


def _has(blocks: list[Block], line: str) -> bool:
    return any(b.line == line for b in blocks)


def _state(blocks: list[Block], line: str) -> bool | Unknown:
    if _has(blocks, line):
        return True
    if _has(blocks, f"no {line}"):
        return False
    return Unknown(f"neither '{line}' nor 'no {line}' in running-config")


def config_release(blocks: list[Block]) -> str | None:
    """The ``version 12.2`` line of a running-config (major.minor only)."""
    lines = _top(blocks, "version ")
    return lines[0].line.split()[1] if lines and len(lines[0].line.split()) > 1 else None


def _telnet(blocks: list[Block], release: str | None = None) -> bool | Unknown:
    vtys = _top(blocks, "line vty ")
    if not vtys:
        return Unknown("no 'line vty' in running-config")
    release = release or config_release(blocks)
    default = release_default("vty_transport_input", release)
    silent = False
    for vty in vtys:
        inputs = [c.split()[2:] for c in vty.children if c.startswith("transport input")]
        if not inputs:
            if default is not None:
                inputs = [list(default[0])]  # type: ignore[call-overload]
            else:
                silent = True
                continue
        if any("telnet" in words or "all" in words for words in inputs):
            return True
    if silent:
        return Unknown(f"a vty has no 'transport input' line and the default of release "
                       f"{release or '(unknown)'} is not in ios_defaults.yaml")
    return False


def _secret_type(words: list[str], keyword: str) -> str:
    """Type of the credential after ``secret``/``password`` in a tokenised line."""
    index = words.index(keyword)
    after = words[index + 1:]
    typed = len(after) >= 2 and after[0].isdigit()
    if keyword == "secret":
        return after[0] if typed else "0"
    return "7" if typed and after[0] == "7" else "plain"


def _enable_secret_type(blocks: list[Block]) -> str:
    for prefix, keyword in (("enable secret", "secret"), ("enable password", "password")):
        for block in _top(blocks, prefix + " "):
            words = [w for w in block.line.split() if w]
            if "level" in words:
                del words[words.index("level"):words.index("level") + 2]
            return _secret_type(words, keyword)
    return "none"


def _local_user(block: Block) -> dict[str, object]:
    words = block.line.split()
    privilege = 1
    if "privilege" in words and words.index("privilege") + 1 < len(words):
        value = words[words.index("privilege") + 1]
        if not value.isdigit():
            raise ParseError(f"privilege {value[:10]!r} is not a number")
        privilege = int(value)
    if "secret" in words:
        secret = _secret_type(words, "secret")
    elif "password" in words:
        secret = _secret_type(words, "password")
    else:
        secret = "none"
    return {"name": words[1], "privilege": privilege, "secret_type": secret}


def _local_users(blocks: list[Block], issues: Issues | None = None) -> list[dict[str, object]]:
    return _each(_top(blocks, "username "), issues, _local_user)


def _aaa_servers(blocks: list[Block]) -> list[dict[str, str]]:
    servers: list[dict[str, str]] = []

    def add(protocol: str, host: str) -> None:
        entry = {"protocol": protocol, "host": host}
        if entry not in servers:
            servers.append(entry)

    for block in blocks:
        words = block.line.split()
        if block.line.startswith(("tacacs-server host ", "radius-server host ")):
            add("tacacs+" if words[0].startswith("tacacs") else "radius", words[2])
        elif block.line.startswith(("tacacs server ", "radius server ")):
            protocol = "tacacs+" if words[0] == "tacacs" else "radius"
            for child in block.children:
                parts = child.split()
                if parts[:2] in (["address", "ipv4"], ["address", "ipv6"]) and len(parts) > 2:
                    add(protocol, parts[2])
        elif block.line.startswith("aaa group server "):
            protocol = "tacacs+" if words[3:4] == ["tacacs+"] else "radius"
            for child in block.children:
                parts = child.split()
                if parts[0] == "server-private" and len(parts) > 1:
                    add(protocol, parts[1])
    return servers


def _is_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return False


def _logging_host(block: Block) -> str | None:
    """``logging host {<ip>|<name>|ipv6 <addr>} [vrf <v>] ...`` or the old ``logging <ip>``;
    the VRF and transport words follow the host. A ``logging host`` line without its host
    raises IndexError (the line is skipped and listed)."""
    words = block.line.split()
    if words[1] == "host":
        return words[3] if words[2] == "ipv6" else words[2]
    return words[1] if _is_address(words[1]) else None


def _logging_hosts(blocks: list[Block], issues: Issues | None = None) -> list[str]:
    return list(dict.fromkeys(_each(_top(blocks, "logging "), issues, _logging_host)))


def _ntp_servers(blocks: list[Block]) -> list[str]:
    servers: list[str] = []
    for block in _top(blocks, "ntp server ", "sntp server "):
        words = block.line.split()[2:]
        while words and words[0] in ("vrf", "ip", "ipv6"):
            words = words[2:] if words[0] == "vrf" else words[1:]
        if words and words[0] not in servers:
            servers.append(words[0])
    return servers


def _community(block: Block) -> dict[str, object]:
    words = block.line.split()[2:]
    if not words:
        raise ParseError("snmp-server community without a name")
    name, rest = words[0], words[1:]
    if rest[:1] == ["view"]:
        rest = rest[2:]
    access = "RO"
    if rest and rest[0].upper() in ("RO", "RW"):
        access, rest = rest[0].upper(), rest[1:]
    if rest[:1] == ["ipv6"]:
        rest = rest[2:]
    return {**community_ref(name), "access": access, "acl": rest[0] if rest else None}


def _communities(blocks: list[Block], issues: Issues | None = None) -> list[dict[str, object]]:
    return _each(_top(blocks, "snmp-server community "), issues, _community)


def _unused_up(blocks: list[Block]) -> int:
    count = 0
    for block in _top(blocks, "interface "):
        name = block.line.split()[1]
        if not _PHYSICAL.fullmatch(name) or "shutdown" in block.children:
            continue
        if not any(c.startswith(_IN_USE) and not c.startswith("no ") for c in block.children):
            count += 1
    return count


@parser
def ios_config_facts(blocks: list[Block], release: str | None = None,
                     issues: Issues | None = None) -> dict[str, object]:
    """Switch facts from parsed running-config (values or ``Unknown``); ``release`` from
    ``show version`` selects release-dependent defaults (else the config's version line)."""
    facts: dict[str, object] = {
        "mgmt.telnet_enabled": _telnet(blocks, release),
        "mgmt.http_enabled": _state(blocks, "ip http server"),
        "mgmt.https_enabled": _state(blocks, "ip http secure-server"),
        "mgmt.ssh_v2_only": _has(blocks, "ip ssh version 2"),
        "aaa.new_model": _has(blocks, "aaa new-model"),
        "aaa.servers": _aaa_servers(blocks),
        "auth.enable_secret_type": _enable_secret_type(blocks),
        "auth.password_encryption": _has(blocks, "service password-encryption"),
        "auth.local_users": _local_users(blocks, issues),
        "logging.hosts": _logging_hosts(blocks, issues),
        "time.ntp_servers": _ntp_servers(blocks),
        "snmp.communities": _communities(blocks, issues),
        "mgmt.banner_configured": any(b.line in ("banner login", "banner motd", "banner exec")
                                      and any(c.strip() for c in b.children) for b in blocks),
        "interfaces.unused_up": _unused_up(blocks),
    }
    hostname = _top(blocks, "hostname ")
    if hostname:
        facts["identity.name"] = hostname[0].line.split(None, 1)[1].strip()
    return facts
