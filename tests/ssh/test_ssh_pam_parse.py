"""Password policy from login.defs, PAM stacks, pwquality.conf and faillock.conf: every
default, every precedence and every refusal exact (issue 23: pam.py killed 42 %)."""

from __future__ import annotations

import dataclasses

import pytest

from otaudit.probes.base import ParseError
from otaudit.probes.ssh.parse import pam
from otaudit.probes.ssh.parse.common import Unknown


def stack(text: str) -> list[pam.PamLine]:
    return pam.parse_pam_stack(text)


# --- login.defs ---------------------------------------------------------------------------------

def test_login_defs_pairs() -> None:
    text = "# c\nPASS_MAX_DAYS\t90\nPASS_MIN_DAYS 1\nUSERGROUPS_ENAB\nMAIL_DIR   /var/mail  \n"
    assert pam.parse_login_defs(text) == {"PASS_MAX_DAYS": "90", "PASS_MIN_DAYS": "1",
                                          "USERGROUPS_ENAB": "", "MAIL_DIR": "/var/mail"}


@pytest.mark.parametrize("line", ["pass_max_days 90", "1PASS 2", "PASS-MAX 3"])
def test_login_defs_refuses_other_lines(line: str) -> None:
    with pytest.raises(ParseError, match=r"^login\.defs line is not 'KEY value': "):
        pam.parse_login_defs(f"PASS_MAX_DAYS 90\n{line}\n")


@pytest.mark.parametrize(("values", "facts"), [
    ({"PASS_MAX_DAYS": "90", "PASS_MIN_DAYS": "1"}, {"pwpol.max_days": 90, "pwpol.min_days": 1}),
    ({"PASS_MAX_DAYS": "90"}, {"pwpol.max_days": 90}),
    ({"PASS_MIN_DAYS": "0"}, {"pwpol.min_days": 0}),
    ({"PASS_WARN_AGE": "7"}, {}),
])
def test_login_defs_facts(values: dict, facts: dict) -> None:
    assert pam.login_defs_facts(values) == facts


def test_login_defs_facts_refuse_a_non_number() -> None:
    with pytest.raises(ParseError, match=r"^PASS_MAX_DAYS: 'ninety' is not an integer$"):
        pam.login_defs_facts({"PASS_MAX_DAYS": "ninety"})


# --- PAM stacks ---------------------------------------------------------------------------------

def test_pam_stack_lines() -> None:
    text = ("# c\n@include common-auth\n"
            "auth [success=1 default=ignore] pam_unix.so nullok try_first_pass\n"
            "-session optional /lib/security/pam_systemd.so\n"
            "password requisite pam_pwquality.so retry=3 minlen=12\n")
    assert stack(text) == [
        pam.PamLine("@include", "", "common-auth", ()),
        pam.PamLine("auth", "[success=1 default=ignore]", "pam_unix.so",
                    ("nullok", "try_first_pass")),
        pam.PamLine("session", "optional", "/lib/security/pam_systemd.so", ()),
        pam.PamLine("password", "requisite", "pam_pwquality.so", ("retry=3", "minlen=12"))]
    assert stack(text)[2].module_name == "pam_systemd.so"
    assert stack(text)[3].arg("minlen") == "12"
    assert stack(text)[3].arg("retry") == "3"
    assert stack(text)[3].arg("min") is None


def test_an_argument_with_an_equals_sign_in_its_value() -> None:
    line = stack("auth required pam_exec.so cmd=a=b\n")[0]
    assert line.arg("cmd") == "a=b"


@pytest.mark.parametrize("line", ["other required pam_unix.so", "auth required",
                                  "AUTH required pam_unix.so", "auth"])
def test_pam_stack_refuses_other_lines(line: str) -> None:
    with pytest.raises(ParseError, match=r"^not a PAM configuration line: "):
        stack(f"auth required pam_unix.so\n{line}\n")


@pytest.mark.parametrize("type_", sorted(pam.PAM_TYPES))
def test_every_pam_type(type_: str) -> None:
    assert stack(f"{type_} required pam_x.so\n")[0].type == type_


def test_pam_lines_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        stack("auth required pam_unix.so\n")[0].control = "sufficient"  # type: ignore[misc]


# --- simple key = value files -------------------------------------------------------------------

def test_simple_conf() -> None:
    text = "# c\nminlen = 14\ndcredit=-1\neven_deny_root\n  ucredit =  -2  \n"
    assert pam.parse_simple_conf(text) == {"minlen": "14", "dcredit": "-1",
                                           "even_deny_root": "", "ucredit": "-2"}
    with pytest.raises(ParseError, match=r"^not a 'key = value' line: '1x = 2'$"):
        pam.parse_simple_conf("minlen = 1\n1x = 2\n")


# --- minimum length -----------------------------------------------------------------------------

@pytest.mark.parametrize(("line", "conf", "expected"), [
    ("password requisite pam_pwquality.so minlen=12", {"minlen": "14"}, 12),
    ("password requisite pam_pwquality.so retry=3", {"minlen": "14"}, 14),
    ("password requisite pam_pwquality.so retry=3", {"dcredit": "-1"}, 8),
    ("password requisite pam_pwquality.so retry=3", {}, 8),
    ("password requisite pam_pwquality.so retry=3", None, 8),
    ("password requisite /usr/lib/security/pam_cracklib.so", {"minlen": "14"}, 9),
    ("password requisite pam_cracklib.so minlen=11", None, 11),
])
def test_min_length_precedence_and_defaults(line: str, conf: dict | None, expected: int) -> None:
    assert pam.min_length(stack(line + "\n"), conf) == expected


def test_min_length_reads_only_the_password_stack() -> None:
    lines = stack("auth requisite pam_pwquality.so minlen=20\n"
                  "password required pam_unix.so\n")
    assert pam.min_length(lines, {"minlen": "14"}) == Unknown(
        "no pam_pwquality/pam_cracklib in the PAM password stack")


def test_min_length_first_module_wins() -> None:
    lines = stack("password requisite pam_cracklib.so minlen=10\n"
                  "password requisite pam_pwquality.so minlen=20\n")
    assert pam.min_length(lines, None) == 10


@pytest.mark.parametrize(("line", "conf", "message"), [
    ("password requisite pam_pwquality.so minlen=", None, "^minlen: '' is not an integer$"),
    ("password requisite pam_pwquality.so minlen=x", None, "^minlen: 'x' is not an integer$"),
    ("password requisite pam_pwquality.so", {"minlen": "y"}, "^minlen: 'y' is not an integer$"),
])
def test_min_length_refuses_non_numbers(line: str, conf: dict | None, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        pam.min_length(stack(line + "\n"), conf)


# --- hash method --------------------------------------------------------------------------------

@pytest.mark.parametrize(("args", "defs", "expected"), [
    ("obscure yescrypt", {"ENCRYPT_METHOD": "SHA512"}, "yescrypt"),
    ("gost_yescrypt", None, "gost_yescrypt"),
    ("sha512 md5", None, "sha512"),
    ("md5 sha256", None, "sha256"),
    ("blowfish", None, "blowfish"),
    ("bigcrypt", None, "bigcrypt"),
    ("md5", None, "md5"),
    ("obscure", {"ENCRYPT_METHOD": "SHA512"}, "sha512"),
    ("rounds=5000", {"ENCRYPT_METHOD": "YESCRYPT"}, "yescrypt"),
])
def test_hash_method(args: str, defs: dict | None, expected: str) -> None:
    lines = stack(f"password [success=1 default=ignore] pam_unix.so {args}\n")
    assert pam.hash_method(lines, defs) == expected


def test_hash_method_from_login_defs_without_pam_unix() -> None:
    lines = stack("auth required pam_unix.so sha256\npassword required pam_deny.so md5\n")
    assert pam.hash_method(lines, {"ENCRYPT_METHOD": "DES"}) == "des"
    unknown = Unknown("neither pam_unix nor login.defs names a hash method")
    assert pam.hash_method(lines, {"ENCRYPT_METHOD": ""}) == unknown
    assert pam.hash_method(lines, {}) == unknown
    assert pam.hash_method(lines, None) == unknown


@pytest.mark.parametrize("method", ["SHA 512", "a" * 21, "sha-512"])
def test_hash_method_refuses_odd_names(method: str) -> None:
    with pytest.raises(ParseError, match=r"is not a method name$"):
        pam.hash_method([], {"ENCRYPT_METHOD": method})
    assert pam.hash_method([], {"ENCRYPT_METHOD": "a" * 20}) == "a" * 20


# --- lockout ------------------------------------------------------------------------------------

def lockout(line: str, conf: dict | None) -> dict:
    return pam.lockout(stack(line + "\n"), conf)


@pytest.mark.parametrize(("line", "conf", "deny", "unlock"), [
    ("auth required pam_faillock.so preauth", None, 3, 600),
    ("auth required pam_faillock.so preauth", {"deny": "5", "unlock_time": "900"}, 5, 900),
    ("auth required pam_faillock.so preauth deny=4 unlock_time=60", {"deny": "5",
                                                                     "unlock_time": "900"}, 4, 60),
    ("auth required pam_faillock.so preauth unlock_time=never", None, 3, 0),
    ("auth required pam_faillock.so", {"unlock_time": "never"}, 3, 0),
    ("auth required pam_faillock.so", {"unlock_time": "0"}, 3, 0),
    ("auth required pam_tally2.so", {"deny": "5", "unlock_time": "900"}, 0, 0),
    ("auth required pam_tally2.so deny=6 unlock_time=120", None, 6, 120),
])
def test_lockout_precedence_and_defaults(line: str, conf: dict | None, deny: int,
                                         unlock: int) -> None:
    assert lockout(line, conf) == {"pwpol.lockout_configured": True, "pwpol.lockout_deny": deny,
                                   "pwpol.lockout_unlock_time": unlock}


def test_no_lockout_module() -> None:
    reason = Unknown("no pam_faillock/pam_tally2 in the PAM auth stack")
    assert lockout("account required pam_faillock.so", {"deny": "5"}) == {
        "pwpol.lockout_configured": False, "pwpol.lockout_deny": reason,
        "pwpol.lockout_unlock_time": reason}


@pytest.mark.parametrize(("line", "conf", "message"), [
    ("auth required pam_faillock.so deny=x", None, "^deny: 'x' is not an integer$"),
    ("auth required pam_faillock.so", {"unlock_time": "soon"},
     "^unlock_time: 'soon' is not an integer$"),
])
def test_lockout_refuses_non_numbers(line: str, conf: dict | None, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        lockout(line, conf)


def test_long_lines_are_cut_in_messages() -> None:
    long = "x" * 80
    with pytest.raises(ParseError, match=rf"^login\.defs line is not 'KEY value': '{long[:60]}'$"):
        pam.parse_login_defs(long)
    with pytest.raises(ParseError, match=rf"^not a PAM configuration line: '{long[:60]}'$"):
        pam.parse_pam_stack(long)
    with pytest.raises(ParseError, match=rf"^not a 'key = value' line: '-{long[:59]}'$"):
        pam.parse_simple_conf("-" + long)
    with pytest.raises(ParseError, match=rf"^ENCRYPT_METHOD '{'m' * 19}-' is not a method name$"):
        pam.hash_method([], {"ENCRYPT_METHOD": "m" * 19 + "-" + "m" * 10})
