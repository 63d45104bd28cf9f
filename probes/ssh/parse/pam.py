"""login.defs, PAM stacks, pwquality.conf and faillock.conf → password policy facts."""

from __future__ import annotations

import re
from dataclasses import dataclass

from otaudit.probes.base import ParseError
from otaudit.probes.ssh.parse.common import Unknown, config_lines, parser, to_int

PAM_TYPES = {"auth", "account", "password", "session"}
HASHES = ("gost_yescrypt", "yescrypt", "sha512", "sha256", "blowfish", "bigcrypt", "md5")
PWQUALITY_DEFAULT_MINLEN = 8   # pwquality.conf(5)
CRACKLIB_DEFAULT_MINLEN = 9    # pam_cracklib(8)
FAILLOCK_DEFAULT_DENY = 3      # faillock.conf(5)
FAILLOCK_DEFAULT_UNLOCK = 600  # faillock.conf(5), seconds


@dataclass(frozen=True)
class PamLine:
    type: str
    control: str
    module: str
    args: tuple[str, ...]

    def arg(self, name: str) -> str | None:
        for arg in self.args:
            if arg.startswith(f"{name}="):
                return arg.split("=", 1)[1]
        return None

    @property
    def module_name(self) -> str:
        return self.module.rsplit("/", 1)[-1]


@parser
def parse_login_defs(text: str) -> dict[str, str]:
    """``KEY value`` pairs of /etc/login.defs."""
    values = {}
    for line in config_lines(text):
        match = re.fullmatch(r"([A-Z][A-Z0-9_]*)(?:\s+(.*))?", line)
        if not match:
            raise ParseError(f"login.defs line is not 'KEY value': {line[:60]!r}")
        values[match[1]] = (match[2] or "").strip()
    return values


@parser
def login_defs_facts(values: dict[str, str]) -> dict[str, object]:
    facts: dict[str, object] = {}
    for path, key in (("pwpol.max_days", "PASS_MAX_DAYS"), ("pwpol.min_days", "PASS_MIN_DAYS")):
        if key in values:
            facts[path] = to_int(values[key], key)
    return facts


@parser
def parse_pam_stack(text: str) -> list[PamLine]:
    """Lines of a /etc/pam.d file; ``@include`` lines are kept as type ``@include``."""
    lines = []
    for line in config_lines(text):
        if line.startswith("@include"):
            lines.append(PamLine("@include", "", line.split(None, 1)[-1], ()))
            continue
        match = re.fullmatch(r"(-?)([a-z]+)\s+(\[[^\]]*\]|\S+)\s+(\S+)(?:\s+(.*))?", line)
        if not match or match[2] not in PAM_TYPES:
            raise ParseError(f"not a PAM configuration line: {line[:60]!r}")
        lines.append(PamLine(match[2], match[3], match[4], tuple((match[5] or "").split())))
    return lines


@parser
def parse_simple_conf(text: str) -> dict[str, str]:
    """``key = value`` lines and bare flags (pwquality.conf, faillock.conf, audisp)."""
    values = {}
    for line in config_lines(text):
        match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=\s*(.*))?", line)
        if not match:
            raise ParseError(f"not a 'key = value' line: {line[:60]!r}")
        values[match[1]] = (match[2] or "").strip()
    return values


def _module(stack: list[PamLine], type_: str, *names: str) -> PamLine | None:
    return next((p for p in stack if p.type == type_ and p.module_name in names), None)


@parser
def min_length(password_stack: list[PamLine], pwquality: dict[str, str] | None) -> int | Unknown:
    """Effective minimum length from pam_pwquality / pam_cracklib and pwquality.conf.

    ``pwquality`` is the parsed pwquality.conf, or None when the file does not exist.
    """
    line = _module(password_stack, "password", "pam_pwquality.so", "pam_cracklib.so")
    if line is None:
        return Unknown("no pam_pwquality/pam_cracklib in the PAM password stack")
    if line.arg("minlen") is not None:
        return to_int(line.arg("minlen") or "", "minlen")
    if line.module_name == "pam_cracklib.so":
        return CRACKLIB_DEFAULT_MINLEN
    if pwquality and "minlen" in pwquality:
        return to_int(pwquality["minlen"], "minlen")
    return PWQUALITY_DEFAULT_MINLEN


@parser
def hash_method(password_stack: list[PamLine], login_defs: dict[str, str] | None) -> str | Unknown:
    """Hash of new passwords: pam_unix option, else login.defs ENCRYPT_METHOD."""
    line = _module(password_stack, "password", "pam_unix.so")
    if line is not None:
        for name in HASHES:
            if name in line.args:
                return name
    if login_defs and login_defs.get("ENCRYPT_METHOD"):
        method = login_defs["ENCRYPT_METHOD"].lower()
        if not re.fullmatch(r"[a-z0-9_]{1,20}", method):
            raise ParseError(f"ENCRYPT_METHOD {method[:20]!r} is not a method name")
        return method
    return Unknown("neither pam_unix nor login.defs names a hash method")


@parser
def lockout(auth_stack: list[PamLine], faillock: dict[str, str] | None) -> dict[str, object]:
    """pwpol.lockout_* from pam_faillock (or pam_tally2) and faillock.conf."""
    line = _module(auth_stack, "auth", "pam_faillock.so", "pam_tally2.so")
    if line is None:
        reason = Unknown("no pam_faillock/pam_tally2 in the PAM auth stack")
        return {"pwpol.lockout_configured": False, "pwpol.lockout_deny": reason,
                "pwpol.lockout_unlock_time": reason}
    conf = (faillock or {}) if line.module_name == "pam_faillock.so" else {}
    deny_default = FAILLOCK_DEFAULT_DENY if line.module_name == "pam_faillock.so" else 0
    unlock_default = FAILLOCK_DEFAULT_UNLOCK if line.module_name == "pam_faillock.so" else 0
    deny = line.arg("deny") or conf.get("deny")
    unlock = line.arg("unlock_time") or conf.get("unlock_time")
    unlock_value: int
    if unlock == "never":
        unlock_value = 0
    else:
        unlock_value = to_int(unlock, "unlock_time") if unlock else unlock_default
    return {"pwpol.lockout_configured": True,
            "pwpol.lockout_deny": to_int(deny, "deny") if deny else deny_default,
            "pwpol.lockout_unlock_time": unlock_value}
