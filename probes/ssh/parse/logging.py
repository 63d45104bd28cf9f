"""Remote log targets: rsyslog (legacy and RainerScript), journal-upload, audisp-remote."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from otaudit.probes.base import ParseError
from otaudit.probes.ssh.parse.common import parser, to_int
from otaudit.probes.ssh.parse.pam import parse_simple_conf

TLS_DRIVERS = {"gtls", "ossl", "mbedtls"}
_PARAM = re.compile(r"([A-Za-z][A-Za-z0-9_.]*)\s*=\s*\"([^\"]*)\"")
_HOST = re.compile(r"[A-Za-z0-9_.:-]{1,253}")


def _target(host: str, port: int, protocol: str, tls: bool) -> dict[str, object]:
    if not _HOST.fullmatch(host):
        raise ParseError(f"implausible log host {host[:40]!r}")
    if not 0 < port < 65536:
        raise ParseError(f"log port {port} out of range")
    return {"host": host, "port": port, "protocol": protocol, "tls": tls}


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


def _legacy_forward(action: str, tls_mode: bool) -> dict[str, object]:
    """``@host[:port]`` (UDP) or ``@@host[:port]`` (TCP), options ``(o)`` and ``;Template``."""
    tcp = action.startswith("@@")
    rest = action[2:] if tcp else action[1:]
    rest = re.sub(r"^\([^)]*\)", "", rest).split(";", 1)[0].strip()
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::(\d+))?|([^:\s\[\]]+)(?::(\d+))?", rest)
    if not match:
        raise ParseError(f"cannot read forwarding target {action[:60]!r}")
    host = match[1] or match[3]
    port = to_int(match[2] or match[4] or "514", "port")
    return _target(host, port, "tcp" if tcp else "udp", tcp and tls_mode)


@parser
def parse_rsyslog(text: str) -> list[dict[str, object]]:
    """Forwarding targets of rsyslog configuration text (main file plus drop-ins)."""
    lines = _strip_comments(text)
    joined = "\n".join(lines)
    default_driver = "ptcp"
    match = re.search(r"\bglobal\s*\(([^)]*)\)", joined, re.I | re.S)
    if match:
        for key, value in _PARAM.findall(match[1]):
            if key.lower() == "defaultnetstreamdriver":
                default_driver = value.lower()
    targets = []
    send_mode = 0
    for line in lines:
        lower = line.lower()
        if lower.startswith("$defaultnetstreamdriver "):
            default_driver = line.split(None, 1)[1].strip().lower()
        elif lower.startswith("$actionsendstreamdrivermode "):
            send_mode = to_int(line.split(None, 1)[1], "$ActionSendStreamDriverMode")
        elif not line.startswith("$") and "action(" not in lower.replace(" ", ""):
            parts = line.split(None, 1)
            if len(parts) == 2 and parts[1].startswith("@"):
                targets.append(_legacy_forward(parts[1], send_mode == 1
                                               and default_driver in TLS_DRIVERS))
    for body in _actions(joined):
        params = {k.lower(): v for k, v in _PARAM.findall(body)}
        if params.get("type", "").lower() != "omfwd":
            continue
        if "target" not in params:
            raise ParseError("omfwd action without target")
        protocol = params.get("protocol", "udp").lower()
        driver = params.get("streamdriver", default_driver).lower()
        tls = (protocol == "tcp" and params.get("streamdrivermode", "0") == "1"
               and driver in TLS_DRIVERS)
        targets.append(_target(params["target"], to_int(params.get("port", "514"), "port"),
                               protocol, tls))
    return targets


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
