"""sshd's effective configuration: ``sshd -T`` output, or evaluated from ``sshd_config``.

``sshd -T`` needs root; as a normal user it fails. Then the configuration files are read
(``/etc/ssh/sshd_config`` with its ``Include``d drop-ins) and evaluated like sshd does:
first value wins, ``Include`` splices the drop-ins in place, keywords are case-insensitive,
OpenSSH's compiled-in defaults fill the rest. ``Match`` blocks change settings for some
connections only: for the login posture (password, keyboard-interactive, empty passwords,
root login, X11) the most permissive value any ``Match`` block allows is reported, since
that is what those connections get. ``AuthenticationMethods`` decides what is effective:
``PasswordAuthentication yes`` with ``AuthenticationMethods publickey`` means no password
login. Dropbear (embedded systems) is configured by command-line flags in
``/etc/default/dropbear``.
"""

from __future__ import annotations

import re

from otaudit.probes.base import ParseError
from otaudit.probes.ssh.parse.common import Issues, parser, skip_line, to_int, yes_no

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
    methods = config.get("authenticationmethods", ["any"])[0].split()
    if methods and methods != ["any"]:
        facts["sshd.authentication_methods"] = methods
        chains = [chain.split(",") for chain in methods]
        for path, method in (("sshd.password_authentication", "password"),
                             ("sshd.kbd_interactive_authentication", "keyboard-interactive"),
                             ("sshd.pubkey_authentication", "publickey")):
            allowed = any(m.split(":")[0] == method for chain in chains for m in chain)
            if path in facts and not allowed:
                facts[path] = False  # enabled, but no AuthenticationMethods list uses it
    else:
        facts["sshd.authentication_methods"] = ["any"]
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


# --- sshd_config evaluation (when sshd -T is not available) -----------------------------

# OpenSSH's compiled-in defaults (9.x) for what the facts read, as sshd -T prints them
DEFAULTS = {
    "permitrootlogin": "prohibit-password", "passwordauthentication": "yes",
    "permitemptypasswords": "no", "pubkeyauthentication": "yes",
    "kbdinteractiveauthentication": "yes", "x11forwarding": "no", "maxauthtries": "6",
    "clientaliveinterval": "0", "logingracetime": "120", "loglevel": "INFO",
    "authenticationmethods": "any",
}
ALIASES = {"challengeresponseauthentication": "kbdinteractiveauthentication"}
# A Match block value that loosens the posture (reported, as some connections get it)
LOOSER = {"passwordauthentication": "yes", "kbdinteractiveauthentication": "yes",
          "permitemptypasswords": "yes", "x11forwarding": "yes"}
ROOT_ORDER = ["no", "forced-commands-only", "prohibit-password", "yes"]
_TIME = re.compile(r"(?:(\d+)([smhdwSMHDW]?))+")


def _seconds(value: str) -> str:
    """sshd time format (``2m``, ``1h30m``, ``120``) as seconds, like sshd -T prints it."""
    units = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    if not _TIME.fullmatch(value):
        raise ParseError(f"{value[:20]!r} is not an sshd time")
    return str(sum(int(n) * units[u.lower()]
                   for n, u in re.findall(r"(\d+)([smhdwSMHDW]?)", value)))


@parser
def parse_sshd_config(main: str, dropins: str | None = None, server_version: str = "",
                      issues: Issues | None = None) -> dict[str, list[str]]:
    """The effective global settings of sshd_config (+ drop-ins), as ``parse_sshd_t`` gives.

    ``Match`` blocks are evaluated for the most permissive connection (see module doc).
    ``server_version`` (``OpenSSH_6.6.1p1``) picks the PermitRootLogin default (``yes``
    before OpenSSH 7.0).
    """
    lines: list[tuple[int, str]] = []
    for number, raw in enumerate(main.splitlines(), 1):
        words = raw.strip().split()
        if words and words[0].lower() == "include":
            if dropins:
                lines.extend((0, line) for line in dropins.splitlines())
            continue
        lines.append((number, raw))
    config: dict[str, list[str]] = {}
    matches: list[dict[str, str]] = []
    for number, raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = line.split()
        words = words[:next((i for i, w in enumerate(words) if w.startswith("#")), len(words))]
        if "=" in words[0] and len(words) == 1:
            words = words[0].split("=", 1)
        key = ALIASES.get(words[0].lower(), words[0].lower())
        if not re.fullmatch(r"[a-z][a-z0-9]*", key):
            skip_line(issues, number, raw, "not a keyword line")
            continue
        value = " ".join(words[1:]).strip('"')
        if key == "match":
            matches.append({})
            continue
        try:
            if key == "logingracetime":
                value = _seconds(value)
        except ParseError as exc:
            skip_line(issues, number, raw, str(exc))
            continue
        if matches:
            matches[-1].setdefault(key, value)
        elif key in ("hostkey", "listenaddress", "port", "acceptenv", "subsystem"):
            config.setdefault(key, []).append(value)
        else:
            config.setdefault(key, [value])
    defaults = dict(DEFAULTS)
    old = re.match(r"OpenSSH_(\d+)\.(\d+)", server_version)
    if old and (int(old[1]), int(old[2])) < (7, 0):
        defaults["permitrootlogin"] = "yes"
    for key, value in defaults.items():
        config.setdefault(key, [value])
    for block in matches:
        for key, looser in LOOSER.items():
            if block.get(key, "").lower() == looser:
                config[key] = [looser]
        root = block.get("permitrootlogin", "").lower().replace("without-password",
                                                                 "prohibit-password")
        current = config["permitrootlogin"][0].lower().replace("without-password",
                                                               "prohibit-password")
        if root in ROOT_ORDER and current in ROOT_ORDER and \
                ROOT_ORDER.index(root) > ROOT_ORDER.index(current):
            config["permitrootlogin"] = [root]
        if block.get("authenticationmethods", "") == "any":
            config["authenticationmethods"] = ["any"]
    return config


@parser
def dropbear_facts(defaults_file: str | None) -> dict[str, object]:
    """sshd.* of a Dropbear server from ``DROPBEAR_EXTRA_ARGS`` (none: its defaults).

    Flags (dropbear(8)): ``-w`` no root login, ``-g`` no password login for root, ``-s`` no
    password login, ``-B`` allow blank passwords. Dropbear has no keyboard-interactive.
    """
    flags: list[str] = []
    for line in (defaults_file or "").splitlines():
        match = re.match(r"\s*DROPBEAR_EXTRA_ARGS\s*=\s*[\"']?([^\"'#]*)", line)
        if match:
            flags = re.findall(r"-(\w+)", match[1])
    letters = {c for flag in flags for c in flag if not flag.startswith(("p", "r", "b"))}
    root = "no" if "w" in letters else "prohibit-password" if "g" in letters else "yes"
    return {"sshd.permit_root_login": root,
            "sshd.password_authentication": "s" not in letters,
            "sshd.permit_empty_passwords": "B" in letters,
            "sshd.pubkey_authentication": True,
            "sshd.kbd_interactive_authentication": False,
            "sshd.authentication_methods": ["any"]}
