"""Hirschmann HiOS: ``show system info`` and ``show running-config script all``."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from otaudit.probes.base import ParseError
from otaudit.probes.ssh.parse.common import Issues, Unknown, community_ref, parser, skip_line

_PORT = re.compile(r"\d+/\d+")
_AAA = {"radius", "tacacs"}


@dataclass
class HiosConfig:
    header: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    interfaces: dict[str, list[str]] = field(default_factory=dict)


@parser
def parse_system_info(text: str) -> dict[str, str]:
    """Dotted ``Key......value`` lines."""
    values = {}
    for line in text.splitlines():
        match = re.fullmatch(r"(\S.*?)\.{3,}(.*)", line.rstrip())
        if match:
            values[match[1].strip()] = match[2].strip()
    if not {"Firmware software release (RAM)", "Device hardware description"} & values.keys():
        raise ParseError("no firmware release / hardware description: not HiOS system info")
    return values


@parser
def system_info_identity(values: dict[str, str]) -> dict[str, str]:
    facts = {"identity.vendor": "Hirschmann"}
    for path, key in (("identity.name", "System name"),
                      ("identity.model", "Device hardware description"),
                      ("identity.serial", "Serial number"),
                      ("identity.hardware_version", "Device hardware revision")):
        if values.get(key):
            facts[path] = values[key]
    release = values.get("Firmware software release (RAM)", "").split()
    if release:
        match = re.fullmatch(r"(HiOS-[0-9A-Z]+)-(\S+)", release[0])
        if match:
            facts["identity.product"], facts["identity.firmware_version"] = match[1], match[2]
        else:
            facts["identity.firmware_version"] = release[0]
    return facts


@parser
def parse_script(text: str) -> HiosConfig:
    """Global lines and ``interface X ... exit`` blocks of a HiOS config script."""
    config = HiosConfig()
    section: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("!"):
            config.header.append(line[1:].strip())
            continue
        if line.startswith("interface "):
            section = line.split(None, 1)[1]
            config.interfaces[section] = []
        elif line == "vlan database":
            section = "vlan database"
        elif line == "exit":
            section = None
        elif line == "configure":
            continue
        elif section and section != "vlan database":
            config.interfaces[section].append(line)
        elif section is None:
            config.lines.append(line)
    if not any(h.endswith("Configuration") or h.startswith("Version: HiOS") for h in config.header):
        raise ParseError("no '! ... Configuration' / '! Version: HiOS' header: not a HiOS script")
    return config


def _words(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError:
        raise ParseError(f"unbalanced quotes in {line[:60]!r}") from None


def _state(lines: list[str], setting: str) -> bool | Unknown:
    if setting in lines:
        return True
    if f"no {setting}" in lines:
        return False
    return Unknown(f"'{setting}' not stated in the config script")


@parser
def hios_config_facts(config: HiosConfig, ssh_proto_version: str | None,
                      issues: Issues | None = None) -> dict[str, object]:
    """Switch facts from a parsed script (values or ``Unknown``); a line that cannot be read
    is skipped (listed in ``issues``; strict without)."""
    lines = config.lines
    servers, users, roles, hosts, ntp, communities, names = [], {}, {}, [], [], [], []
    aaa_in_use = False
    for number, line in enumerate(lines, 1):
        try:
            _read_line(line, servers, users, roles, hosts, ntp, communities, names)
            words = _words(line)
            if words[:2] == ["authlists", "set-policy"]:
                aaa_in_use |= bool(_AAA & set(words[3:]))
        except (ParseError, IndexError, ValueError) as exc:
            skip_line(issues, number, line, str(exc) or type(exc).__name__)
    return _facts(config, ssh_proto_version, servers, users, roles, hosts, ntp, communities,
                  names, aaa_in_use)


def _read_line(line: str, servers: list, users: dict, roles: dict, hosts: list, ntp: list,
               communities: list, names: list) -> None:
    """Collect what one global line of the script says."""
    words = _words(line)
    if words[:3] in (["radius", "server", "add"], ["tacacs", "server", "add"]):
        servers.append({"protocol": "radius" if words[0] == "radius" else "tacacs+",
                        "host": words[4]})
    elif words[:2] == ["users", "add"]:
        users[words[2]] = None
    elif words[:2] == ["users", "access-role"]:
        roles[words[2]] = words[3]
    elif words[:3] == ["logging", "host", "add"] and "addr" in words:
        hosts.append(words[words.index("addr") + 1])
    elif words[:4] == ["sntp", "client", "server", "add"]:
        ntp.append(words[5])
    elif words[:2] == ["snmp", "community"]:
        if words[2].lower() not in ("ro", "rw"):
            raise ParseError(f"unknown community access {words[2][:10]!r}")
        communities.append({**community_ref(words[3]), "access": words[2].upper(),
                            "acl": None})
    elif words[:2] == ["system", "name"]:
        names.append(words[2])


def _facts(config: HiosConfig, ssh_proto_version: str | None, servers: list, users: dict,
           roles: dict, hosts: list, ntp: list, communities: list, names: list,
           aaa_in_use: bool) -> dict[str, object]:
    lines = config.lines
    unused = 0
    for name, body in config.interfaces.items():
        if not _PORT.fullmatch(name) or "shutdown" in body:
            continue
        named = any(_words(b)[:1] == ["name"] and len(_words(b)) > 1 and _words(b)[1]
                    for b in body)
        if not named and not any(b.startswith(("vlan participation include", "vlan pvid"))
                                 for b in body):
            unused += 1
    ssh_on = _state(lines, "ssh server")
    if ssh_on is False:
        ssh_v2: bool | Unknown = Unknown("ssh server disabled")
    elif ssh_proto_version is None:
        ssh_v2 = Unknown("SSH identification string not read")
    else:
        ssh_v2 = ssh_proto_version == "2.0"
    na = Unknown("HiOS has no enable password or password-encryption setting")
    facts: dict[str, object] = {
        "mgmt.telnet_enabled": _state(lines, "telnet server"),
        "mgmt.http_enabled": _state(lines, "http server"),
        "mgmt.https_enabled": _state(lines, "https server"),
        "mgmt.ssh_v2_only": ssh_v2,
        "aaa.new_model": bool(servers) and aaa_in_use,
        "aaa.servers": servers,
        "auth.enable_secret_type": na,
        "auth.password_encryption": na,
        "auth.local_users": [{"name": u, "privilege": roles.get(u), "secret_type": None}
                             for u in users],
        "logging.hosts": hosts,
        "time.ntp_servers": ntp,
        "snmp.communities": communities,
        "mgmt.banner_configured": "system pre-login-banner operation" in lines
                                  or "cli banner operation" in lines,
        "interfaces.unused_up": unused,
    }
    if names:
        facts["identity.name"] = names[0]
    return facts
