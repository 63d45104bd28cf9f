"""``sshd -T``: OpenSSH's effective server configuration (lower-case keyword, value)."""

from __future__ import annotations

import re

from otaudit.probes.base import ParseError
from otaudit.probes.ssh.parse.common import parser, to_int, yes_no

ROOT_LOGIN = {"yes", "no", "prohibit-password", "forced-commands-only"}
_BOOLS = [  # (fact, keyword); the first keyword present wins
    ("sshd.password_authentication", "passwordauthentication"),
    ("sshd.permit_empty_passwords", "permitemptypasswords"),
    ("sshd.pubkey_authentication", "pubkeyauthentication"),
    ("sshd.kbd_interactive_authentication", "kbdinteractiveauthentication"),
    ("sshd.kbd_interactive_authentication", "challengeresponseauthentication"),  # < 8.7
    ("sshd.x11_forwarding", "x11forwarding"),
]
_INTS = {
    "sshd.max_auth_tries": "maxauthtries",
    "sshd.client_alive_interval": "clientaliveinterval",
    "sshd.login_grace_time": "logingracetime",
}
_LISTS = {"sshd.ciphers": "ciphers", "sshd.macs": "macs", "sshd.kex_algorithms": "kexalgorithms"}


@parser
def parse_sshd_t(text: str) -> dict[str, list[str]]:
    """Keyword → values (keywords such as ``hostkey`` repeat)."""
    config: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        match = re.fullmatch(r"([a-z][a-z0-9]*)(?: (.*))?", line.rstrip())
        if not match:
            raise ParseError(f"not sshd -T output: {line[:60]!r}")
        config.setdefault(match[1], []).append(match[2] or "")
    if not {"permitrootlogin", "passwordauthentication"} <= config.keys():
        raise ParseError("sshd -T output lacks permitrootlogin/passwordauthentication")
    return config


@parser
def sshd_facts(config: dict[str, list[str]]) -> dict[str, object]:
    """Fact values (``sshd.*``) from parsed ``sshd -T`` output."""
    facts: dict[str, object] = {}
    root = config["permitrootlogin"][0].strip().lower()
    root = "prohibit-password" if root == "without-password" else root
    if root not in ROOT_LOGIN:
        raise ParseError(f"unknown permitrootlogin value {root[:40]!r}")
    facts["sshd.permit_root_login"] = root
    for path, key in _BOOLS:
        if key in config and path not in facts:
            facts[path] = yes_no(config[key][0], key)
    for path, key in _INTS.items():
        if key in config:
            facts[path] = to_int(config[key][0], key)
    if "loglevel" in config:
        level = config["loglevel"][0].strip().upper()
        if not re.fullmatch(r"[A-Z0-9]{1,12}", level):
            raise ParseError(f"loglevel {level[:20]!r} is not a level name")
        facts["sshd.log_level"] = level
    for path, key in _LISTS.items():
        if key in config:
            names = [n for n in config[key][0].split(",") if n]
            if not all(re.fullmatch(r"[\x21-\x7e]{1,64}", n) for n in names):
                raise ParseError(f"{key} holds an invalid algorithm name")
            facts[path] = names
    return facts
