"""Remote log targets: rsyslog (legacy and RainerScript), syslog-ng, busybox syslogd,
journal-upload, audisp-remote.

Per-line resilience: given an ``Issues``, a line that cannot be read is skipped (and
listed) and a target whose port cannot be read keeps its host with ``port: null``.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from otaudit.probes.base import ParseError
from otaudit.probes.ssh.parse.common import Issues, parser, skip_line, to_int
from otaudit.probes.ssh.parse.pam import parse_simple_conf

TLS_DRIVERS = {"gtls", "ossl", "mbedtls"}
_PARAM = re.compile(r"([A-Za-z][A-Za-z0-9_.]*)\s*=\s*\"([^\"]*)\"")
_HOST = re.compile(r"[A-Za-z0-9_.:-]{1,253}")


def _target(host: str, port: int | None, protocol: str, tls: bool) -> dict[str, object]:
    if not _HOST.fullmatch(host):
        raise ParseError(f"implausible log host {host[:40]!r}")
    if port is not None and not 0 < port < 65536:
        raise ParseError(f"log port {port} out of range")
    return {"host": host, "port": port, "protocol": protocol, "tls": tls}


def _port(text: str, number: int, line: str, issues: Issues | None) -> int | None:
    """A port number, or None (the line listed in ``issues``) when it is not one."""
    if re.fullmatch(r"\d{1,5}", text.strip()):
        return int(text)
    skip_line(issues, number, line, f"port {text[:20]!r} is not a number; host kept, "
                                    "port unknown")
    return None


def _strip_comments(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def _actions(text: str) -> list[str]:
    """Bodies of ``action( ... )`` statements (quotes respected)."""
    bodies, i = [], 0
    while True:
        match = re.compile(r"\baction\s*\(", re.I).search(text, i)
        if not match:
            return bodies
        j, quoted = match.end(), False
        while j < len(text) and (quoted or text[j] != ")"):
            quoted = not quoted if text[j] == '"' else quoted
            j += 1
        if j >= len(text):
            raise ParseError("unterminated action( ... ) in rsyslog configuration")
        bodies.append(text[match.end():j])
        i = j + 1


def _legacy_forward(action: str, tls_mode: bool, number: int = 0, line: str = "",
                    issues: Issues | None = None) -> dict[str, object]:
    """``@host[:port]`` (UDP) or ``@@host[:port]`` (TCP), options ``(o)`` and ``;Template``."""
    tcp = action.startswith("@@")
    rest = action[2:] if tcp else action[1:]
    rest = re.sub(r"^\([^)]*\)", "", rest).split(";", 1)[0].strip()
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::(\S+))?|([^:\s\[\]]+)(?::(\S+))?", rest)
    if not match:
        raise ParseError(f"cannot read forwarding target {action[:60]!r}")
    host = match[1] or match[3]
    port_text = match[2] or match[4]
    port = 514 if port_text is None else _port(port_text, number, line or action, issues)
    return _target(host, port, "tcp" if tcp else "udp", tcp and tls_mode)


@parser
def parse_rsyslog(text: str, issues: Issues | None = None) -> list[dict[str, object]]:
    """Forwarding targets of rsyslog configuration text (main file plus drop-ins)."""
    numbered = [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1)
                if line.strip() and not line.strip().startswith("#")]
    joined = "\n".join(line for _, line in numbered)
    default_driver = "ptcp"
    match = re.search(r"\bglobal\s*\(([^)]*)\)", joined, re.I | re.S)
    if match:
        for key, value in _PARAM.findall(match[1]):
            if key.lower() == "defaultnetstreamdriver":
                default_driver = value.lower()
    targets = []
    send_mode = 0
    for number, line in numbered:
        lower = line.lower()
        try:
            if lower.startswith("$defaultnetstreamdriver "):
                default_driver = line.split(None, 1)[1].strip().lower()
            elif lower.startswith("$actionsendstreamdrivermode "):
                send_mode = to_int(line.split(None, 1)[1], "$ActionSendStreamDriverMode")
            elif not line.startswith("$") and "action(" not in lower.replace(" ", ""):
                parts = line.split(None, 1)
                if len(parts) == 2 and parts[1].startswith("@"):
                    targets.append(_legacy_forward(
                        parts[1], send_mode == 1 and default_driver in TLS_DRIVERS,
                        number, line, issues))
        except ParseError as exc:
            skip_line(issues, number, line, str(exc))
    for body in _actions(joined):
        params = {k.lower(): v for k, v in _PARAM.findall(body)}
        if params.get("type", "").lower() != "omfwd":
            continue
        where = next((n for n, line in numbered if "omfwd" in line.lower()), 0)
        try:
            if "target" not in params:
                raise ParseError("omfwd action without target")
            protocol = params.get("protocol", "udp").lower()
            driver = params.get("streamdriver", default_driver).lower()
            tls = (protocol == "tcp" and params.get("streamdrivermode", "0") == "1"
                   and driver in TLS_DRIVERS)
            port = _port(params.get("port", "514"), where, body, issues)
            targets.append(_target(params["target"], port, protocol, tls))
        except ParseError as exc:
            skip_line(issues, where, body, str(exc))
    return targets


# --- syslog-ng ---------------------------------------------------------------------------

_NG_DRIVER = re.compile(r"\b(network|syslog|tcp6?|udp6?)\s*\(\s*\"?([^\s\")]+)\"?", re.I)


def _ng_blocks(text: str, keyword: str) -> list[tuple[str, str]]:
    """``keyword NAME { body };`` statements (name may be empty for ``log``)."""
    out = []
    for match in re.finditer(rf"\b{keyword}\s+([A-Za-z0-9_.-]*)\s*\{{", text):
        depth, j = 1, match.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        if depth:
            raise ParseError(f"unterminated {keyword} {{ ... }} in syslog-ng configuration")
        out.append((match[1], text[match.end():j - 1]))
    return out


def _ng_uncomment(text: str) -> str:
    lines = []
    for line in text.splitlines():
        quoted, cut = False, len(line)
        for i, char in enumerate(line):
            if char == '"':
                quoted = not quoted
            elif char == "#" and not quoted:
                cut = i
                break
        lines.append(line[:cut])
    return "\n".join(lines)


@parser
def parse_syslog_ng(text: str, issues: Issues | None = None) -> list[dict[str, object]]:
    """Remote destinations of syslog-ng that a ``log { }`` path uses."""
    text = _ng_uncomment(text)
    used = set()
    for _, body in _ng_blocks(text, "log"):
        used.update(re.findall(r"\bdestination\s*\(\s*([A-Za-z0-9_.-]+)\s*\)", body))
    targets = []
    for name, body in _ng_blocks(text, "destination"):
        if name not in used:
            continue
        for match in _NG_DRIVER.finditer(body):
            driver, host = match[1].lower(), match[2]
            rest = body[match.end():]
            transport = re.search(r"\btransport\s*\(\s*\"?(\w+)", rest)
            proto = (transport[1].lower() if transport else
                     "udp" if driver.startswith("udp") else "tcp")
            tls = proto == "tls" or re.search(r"\btls\s*\(", rest) is not None
            port_match = re.search(r"\bport\s*\(\s*([^)\s]+)\s*\)", rest)
            default = 6514 if tls else 601 if driver == "syslog" else 514
            line = body.strip().splitlines()[0] if body.strip() else name
            try:
                port = (_port(port_match[1], 0, f"destination {name}: {line}", issues)
                        if port_match else default)
                targets.append(_target(host, port, "tcp" if proto == "tls" else proto, tls))
            except ParseError as exc:
                skip_line(issues, 0, f"destination {name}", str(exc))
    return targets


# --- busybox syslogd ---------------------------------------------------------------------

@parser
def parse_busybox_syslog(text: str, issues: Issues | None = None) -> list[dict[str, object]]:
    """``REMOTE=host:port`` of /etc/syslog-startup.conf when DESTINATION includes remote."""
    values = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        if not sep:
            skip_line(issues, number, raw, "not KEY=value")
            continue
        values[key.strip()] = (number, raw, value.strip().strip('"'))
    destination = values.get("DESTINATION", (0, "", "buffer"))[2].split()
    if "remote" not in destination or "REMOTE" not in values:
        return []
    number, raw, remote = values["REMOTE"]
    host, _, port_text = remote.partition(":")
    port = _port(port_text, number, raw, issues) if port_text else 514
    return [_target(host, port, "udp", False)]


@parser
def parse_journal_upload(text: str) -> dict[str, object] | None:
    """``URL=`` of /etc/systemd/journal-upload.conf ([Upload] section), if set."""
    section = None
    for line in _strip_comments(text):
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif section == "Upload" and line.startswith("URL="):
            url = line[4:].strip()
            if not url:
                return None
            parts = urlsplit(url if "://" in url else f"http://{url}")
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ParseError(f"journal-upload URL {url[:60]!r} is not http(s)")
            try:
                port = parts.port or 19532
            except ValueError:
                raise ParseError(f"journal-upload URL {url[:60]!r} has a bad port") from None
            return _target(parts.hostname, port, parts.scheme, parts.scheme == "https")
    return None


@parser
def parse_audisp_remote(plugin: str, remote: str) -> dict[str, object] | None:
    """audisp-remote target when its plugin is active and a server is set."""
    active = parse_simple_conf(plugin).get("active", "no").lower() == "yes"
    conf = parse_simple_conf(remote)
    server = conf.get("remote_server", "")
    if not active or not server:
        return None
    transport = conf.get("transport", "tcp").lower()
    return _target(server, to_int(conf.get("port", "60"), "port"), transport,
                   transport == "krb5")
