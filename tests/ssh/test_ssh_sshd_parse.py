"""sshd -T output and sshd_config evaluation: every default, precedence rule, Match rule
and refusal exact (issue 23: sshd.py killed 69 %)."""

from __future__ import annotations

import pytest

from otaudit.probes.base import ParseError
from otaudit.probes.ssh.parse import sshd
from otaudit.probes.ssh.parse.common import Issues

BASE = "permitrootlogin no\npasswordauthentication no\n"
DEFAULT_FACTS = {
    "sshd.permit_root_login": "prohibit-password", "sshd.password_authentication": True,
    "sshd.permit_empty_passwords": False, "sshd.pubkey_authentication": True,
    "sshd.kbd_interactive_authentication": True, "sshd.x11_forwarding": False,
    "sshd.max_auth_tries": 6, "sshd.client_alive_interval": 0, "sshd.login_grace_time": 120,
    "sshd.authentication_methods": ["any"], "sshd.log_level": "INFO"}


def facts_t(extra: str = "", base: str = BASE) -> dict[str, object]:
    return sshd.sshd_facts(sshd.parse_sshd_t(base + extra))


def facts_config(main: str, dropins: str | None = None, version: str = "") -> dict[str, object]:
    return sshd.sshd_facts(sshd.parse_sshd_config(main, dropins, version))


# --- sshd -T ------------------------------------------------------------------------------------

def test_sshd_t_keeps_repeated_keywords_and_empty_values() -> None:
    config = sshd.parse_sshd_t(BASE + "\nhostkey /a\nhostkey /b\nbanner\n")
    assert config == {"permitrootlogin": ["no"], "passwordauthentication": ["no"],
                      "hostkey": ["/a", "/b"], "banner": [""]}


@pytest.mark.parametrize("line", ["PermitRootLogin no", "permit-root no", "1abc x"])
def test_sshd_t_refuses_other_lines(line: str) -> None:
    with pytest.raises(ParseError, match=r"^not sshd -T output: "):
        sshd.parse_sshd_t(BASE + line + "\n")


@pytest.mark.parametrize("text", ["permitrootlogin no\n", "passwordauthentication no\n", ""])
def test_sshd_t_needs_both_keywords(text: str) -> None:
    with pytest.raises(ParseError, match="lacks permitrootlogin/passwordauthentication"):
        sshd.parse_sshd_t(text)


@pytest.mark.parametrize(("value", "fact"), [
    ("yes", "yes"), ("no", "no"), ("prohibit-password", "prohibit-password"),
    ("without-password", "prohibit-password"), ("forced-commands-only", "forced-commands-only"),
    ("Without-Password", "prohibit-password"), ("NO", "no")])
def test_every_root_login_value(value: str, fact: str) -> None:
    base = f"permitrootlogin {value}\npasswordauthentication no\n"
    assert facts_t(base=base)["sshd.permit_root_login"] == fact


def test_an_unknown_root_login_value_is_refused() -> None:
    with pytest.raises(ParseError, match=r"^unknown permitrootlogin value 'maybe'$"):
        facts_t(base="permitrootlogin maybe\npasswordauthentication no\n")


def test_sshd_t_facts_exactly() -> None:
    extra = ("permitemptypasswords yes\npubkeyauthentication no\n"
             "kbdinteractiveauthentication no\nchallengeresponseauthentication yes\n"
             "x11forwarding yes\nmaxauthtries 3\nclientaliveinterval 300\nlogingracetime 60\n"
             "loglevel verbose\nciphers aes256-gcm@openssh.com,aes128-ctr,\nmacs hmac-sha2-256\n"
             "kexalgorithms curve25519-sha256\n")
    assert facts_t(extra) == {
        "sshd.permit_root_login": "no", "sshd.password_authentication": False,
        "sshd.permit_empty_passwords": True, "sshd.pubkey_authentication": False,
        "sshd.kbd_interactive_authentication": False, "sshd.x11_forwarding": True,
        "sshd.max_auth_tries": 3, "sshd.client_alive_interval": 300,
        "sshd.login_grace_time": 60, "sshd.authentication_methods": ["any"],
        "sshd.log_level": "VERBOSE", "sshd.ciphers": ["aes256-gcm@openssh.com", "aes128-ctr"],
        "sshd.macs": ["hmac-sha2-256"], "sshd.kex_algorithms": ["curve25519-sha256"]}


def test_challenge_response_stands_in_for_keyboard_interactive() -> None:
    assert facts_t("challengeresponseauthentication yes\n")[
        "sshd.kbd_interactive_authentication"] is True
    assert "sshd.kbd_interactive_authentication" not in facts_t()
    assert "sshd.x11_forwarding" not in facts_t()


@pytest.mark.parametrize(("methods", "password", "kbd", "pubkey"), [
    ("publickey", False, False, True),
    ("publickey,password", True, False, True),
    ("publickey,keyboard-interactive:pam", False, True, True),
    ("password publickey", True, False, True),
    ("keyboard-interactive", False, True, False),
    ("any", True, True, True),
])
def test_authentication_methods_decide_what_is_effective(methods: str, password: bool, kbd: bool,
                                                         pubkey: bool) -> None:
    extra = ("passwordauthentication yes\nkbdinteractiveauthentication yes\n"
             f"pubkeyauthentication yes\nauthenticationmethods {methods}\n")
    got = facts_t(extra, base="permitrootlogin no\n")
    assert (got["sshd.password_authentication"], got["sshd.kbd_interactive_authentication"],
            got["sshd.pubkey_authentication"]) == (password, kbd, pubkey)
    assert got["sshd.authentication_methods"] == methods.split()


def test_authentication_methods_never_turn_a_disabled_method_on() -> None:
    got = facts_t("authenticationmethods password\n")
    assert got["sshd.password_authentication"] is False
    assert "sshd.kbd_interactive_authentication" not in got


@pytest.mark.parametrize(("line", "message"), [
    ("loglevel debug-3", "^loglevel 'DEBUG-3' is not a level name$"),
    ("loglevel " + "A" * 13, "is not a level name"),
    ("ciphers aes128-ctr,a b", "^ciphers holds an invalid algorithm name$"),
    ("macs " + "m" * 65, "^macs holds an invalid algorithm name$"),
    ("maxauthtries many", "^maxauthtries: 'many' is not an integer$"),
    ("x11forwarding perhaps", "^x11forwarding: 'perhaps' is neither yes nor no$"),
])
def test_sshd_t_refuses_bad_values(line: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        facts_t(line + "\n")


def test_limits_of_names() -> None:
    got = facts_t("loglevel " + "A" * 12 + "\nkexalgorithms " + "k" * 64 + "\n")
    assert (got["sshd.log_level"], got["sshd.kex_algorithms"]) == ("A" * 12, ["k" * 64])


# --- sshd_config --------------------------------------------------------------------------------

def test_an_empty_config_gives_openssh_defaults() -> None:
    assert facts_config("") == DEFAULT_FACTS


@pytest.mark.parametrize(("version", "root"), [
    ("OpenSSH_6.6.1p1", "yes"), ("OpenSSH_6.9", "yes"), ("OpenSSH_7.0", "prohibit-password"),
    ("OpenSSH_9.2p1", "prohibit-password"), ("dropbear_2022.83", "prohibit-password"),
    ("", "prohibit-password")])
def test_root_login_default_depends_on_the_version(version: str, root: str) -> None:
    assert facts_config("", version=version)["sshd.permit_root_login"] == root


def test_first_value_wins_keywords_are_case_insensitive_and_repeat_where_they_may() -> None:
    main = ("# comment\nPasswordAuthentication no\npasswordauthentication yes\n"
            "HostKey /a\nHostKey /b\nPort 22\nPort 2222\nMaxAuthTries=4\n"
            "LogLevel \"ERROR\"\nPermitRootLogin no # trailing comment\n")
    config = sshd.parse_sshd_config(main)
    assert config["passwordauthentication"] == ["no"]
    assert config["hostkey"] == ["/a", "/b"]
    assert config["port"] == ["22", "2222"]
    assert config["maxauthtries"] == ["4"]
    assert config["loglevel"] == ["ERROR"]
    assert config["permitrootlogin"] == ["no"]


def test_include_splices_the_dropins_in_place() -> None:
    main = "Include /etc/ssh/sshd_config.d/*.conf\nPasswordAuthentication yes\n"
    assert facts_config(main, "PasswordAuthentication no\n")[
        "sshd.password_authentication"] is False
    assert facts_config(main, None)["sshd.password_authentication"] is True
    main_first = "PasswordAuthentication yes\nInclude x\n"
    assert facts_config(main_first, "PasswordAuthentication no\n")[
        "sshd.password_authentication"] is True


def test_challenge_response_alias_in_the_config() -> None:
    assert facts_config("ChallengeResponseAuthentication no\n")[
        "sshd.kbd_interactive_authentication"] is False


@pytest.mark.parametrize(("value", "seconds"), [
    ("90", 90), ("90s", 90), ("2m", 120), ("1h30m", 5400), ("1d", 86400), ("1w", 604800),
    ("1H", 3600), ("0", 0)])
def test_login_grace_time_units(value: str, seconds: int) -> None:
    assert facts_config(f"LoginGraceTime {value}\n")["sshd.login_grace_time"] == seconds


def test_a_bad_time_is_skipped_with_its_line() -> None:
    issues = Issues()
    config = sshd.parse_sshd_config("# c\nLoginGraceTime 2x\nLoginGraceTime 30\n", None, "",
                                    issues)
    assert config["logingracetime"] == ["30"]
    assert issues.items == [(2, "LoginGraceTime 2x", "'2x' is not an sshd time")]
    with pytest.raises(ParseError, match=r"^line 2: '2x' is not an sshd time: "):
        sshd.parse_sshd_config("# c\nLoginGraceTime 2x\n")


def test_a_line_that_is_no_keyword_is_skipped() -> None:
    issues = Issues()
    config = sshd.parse_sshd_config("PermitRootLogin no\n-bad value\nX11Forwarding yes\n",
                                    None, "", issues)
    assert config["x11forwarding"] == ["yes"]
    assert issues.items == [(2, "-bad value", "not a keyword line")]
    dropin_issues = Issues()
    sshd.parse_sshd_config("Include x\n", "-bad\n", "", dropin_issues)
    assert dropin_issues.items == [(0, "-bad", "not a keyword line")]


@pytest.mark.parametrize(("block", "fact", "value"), [
    ("PasswordAuthentication yes", "sshd.password_authentication", True),
    ("KbdInteractiveAuthentication yes", "sshd.kbd_interactive_authentication", True),
    ("PermitEmptyPasswords yes", "sshd.permit_empty_passwords", True),
    ("X11Forwarding yes", "sshd.x11_forwarding", True),
    ("PasswordAuthentication no", "sshd.password_authentication", False),
    ("MaxAuthTries 10", "sshd.max_auth_tries", 3),
])
def test_match_blocks_only_loosen(block: str, fact: str, value: object) -> None:
    main = ("PasswordAuthentication no\nKbdInteractiveAuthentication no\nMaxAuthTries 3\n"
            f"Match User admin\n  {block}\n")
    assert facts_config(main)[fact] == value


@pytest.mark.parametrize(("glob", "block", "root"), [
    ("no", "yes", "yes"), ("no", "prohibit-password", "prohibit-password"),
    ("no", "forced-commands-only", "forced-commands-only"),
    ("forced-commands-only", "no", "forced-commands-only"),
    ("prohibit-password", "forced-commands-only", "prohibit-password"),
    ("prohibit-password", "without-password", "prohibit-password"),
    ("without-password", "yes", "yes"), ("yes", "no", "yes"), ("no", "maybe", "no"),
])
def test_match_blocks_loosen_root_login_by_order(glob: str, block: str, root: str) -> None:
    main = f"PermitRootLogin {glob}\nMatch Address 10.0.0.0/8\n  PermitRootLogin {block}\n"
    assert facts_config(main)["sshd.permit_root_login"] == root


def test_match_block_first_value_wins_and_any_methods_reopen() -> None:
    main = ("PasswordAuthentication yes\nAuthenticationMethods publickey\n"
            "Match User a\n  AuthenticationMethods any\n  X11Forwarding no\n  X11Forwarding yes\n")
    got = facts_config(main)
    assert got["sshd.authentication_methods"] == ["any"]
    assert got["sshd.password_authentication"] is True
    assert got["sshd.x11_forwarding"] is False
    closed = facts_config("PasswordAuthentication yes\nAuthenticationMethods publickey\n"
                          "Match User a\n  AuthenticationMethods password\n")
    assert closed["sshd.password_authentication"] is False


def test_several_match_blocks_each_count() -> None:
    main = ("PermitRootLogin no\nMatch User a\n  PasswordAuthentication yes\n"
            "Match User b\n  PermitRootLogin yes\n")
    got = facts_config(main)
    assert (got["sshd.password_authentication"], got["sshd.permit_root_login"]) == (True, "yes")


# --- Dropbear -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("args", "root", "password", "empty"), [
    (None, "yes", True, False),
    ('DROPBEAR_EXTRA_ARGS=""', "yes", True, False),
    ('DROPBEAR_EXTRA_ARGS="-w"', "no", True, False),
    ('DROPBEAR_EXTRA_ARGS="-g"', "prohibit-password", True, False),
    ('DROPBEAR_EXTRA_ARGS="-w -g"', "no", True, False),
    ('DROPBEAR_EXTRA_ARGS="-s"', "yes", False, False),
    ('DROPBEAR_EXTRA_ARGS="-B"', "yes", True, True),
    ("DROPBEAR_EXTRA_ARGS='-swB'", "no", False, True),
    ('DROPBEAR_EXTRA_ARGS="-p 2222 -r /k -b /etc/banner"', "yes", True, False),
    ('DROPBEAR_EXTRA_ARGS="-pws"', "yes", True, False),
    ('# DROPBEAR_EXTRA_ARGS="-w"', "yes", True, False),
    ('DROPBEAR_EXTRA_ARGS="-s" # -w', "yes", False, False),
])
def test_dropbear_flags(args: str | None, root: str, password: bool, empty: bool) -> None:
    assert sshd.dropbear_facts(args) == {
        "sshd.permit_root_login": root, "sshd.password_authentication": password,
        "sshd.permit_empty_passwords": empty, "sshd.pubkey_authentication": True,
        "sshd.kbd_interactive_authentication": False, "sshd.authentication_methods": ["any"]}


def test_dropbear_last_assignment_wins() -> None:
    text = 'DROPBEAR_EXTRA_ARGS="-w"\nDROPBEAR_EXTRA_ARGS="-s"\n'
    got = sshd.dropbear_facts(text)
    assert (got["sshd.permit_root_login"], got["sshd.password_authentication"]) == ("yes", False)


def test_long_values_are_cut_in_messages() -> None:
    long = "X" * 80
    with pytest.raises(ParseError, match=rf"^not sshd -T output: '{long[:60]}'$"):
        sshd.parse_sshd_t(BASE + long + "\n")
    with pytest.raises(ParseError, match=rf"^unknown permitrootlogin value '{'x' * 40}'$"):
        facts_t(base=f"permitrootlogin {long}\npasswordauthentication no\n")
    with pytest.raises(ParseError, match=rf"^loglevel '{'X' * 19}-' is not a level name$"):
        facts_t(f"loglevel {'X' * 19}-{'X' * 10}\n")
    issues = Issues()
    sshd.parse_sshd_config(f"LoginGraceTime {'9' * 19}x{'9' * 10}\n", None, "", issues)
    assert issues.items[0][2] == f"'{'9' * 19}x' is not an sshd time"


def test_sshd_t_first_value_of_a_repeated_keyword_wins() -> None:
    got = facts_t("x11forwarding no\nx11forwarding yes\nmaxauthtries 2\nmaxauthtries 9\n")
    assert (got["sshd.x11_forwarding"], got["sshd.max_auth_tries"]) == (False, 2)


def test_unknown_method_names_are_kept_verbatim() -> None:
    got = facts_t("authenticationmethods aaa\n", base="permitrootlogin no\n"
                  "passwordauthentication yes\n")
    assert got["sshd.authentication_methods"] == ["aaa"]
    assert got["sshd.password_authentication"] is False


def test_keyword_equals_value_splits_once() -> None:
    config = sshd.parse_sshd_config("SetEnv=FOO=bar\nBanner=/etc/issue\n")
    assert (config["setenv"], config["banner"]) == (["FOO=bar"], ["/etc/issue"])


@pytest.mark.parametrize("value", ["yesplease", "z", "YES"])
def test_match_blocks_loosen_only_with_yes(value: str) -> None:
    got = facts_config(f"X11Forwarding no\nMatch User a\n  X11Forwarding {value}\n")
    assert got["sshd.x11_forwarding"] is (value == "YES")
