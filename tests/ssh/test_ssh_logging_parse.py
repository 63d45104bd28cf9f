"""Remote log targets read exactly: defaults, TLS rules, limits and the lines skipped
(issue 23: the logging parsers killed 11 % of their mutants)."""

from __future__ import annotations

import re

import pytest

from otaudit.probes.base import ParseError
from otaudit.probes.ssh.parse import logging as logparse
from otaudit.probes.ssh.parse.common import Issues


def target(host: str, port: int | None, protocol: str, tls: bool) -> dict[str, object]:
    return {"host": host, "port": port, "protocol": protocol, "tls": tls}


# --- hosts and ports at their limits ---------------------------------------------------------

@pytest.mark.parametrize("port", [1, 514, 65535])
def test_ports_inside_the_range(port: int) -> None:
    assert logparse.parse_rsyslog(f"*.* @@h:{port}\n") == [target("h", port, "tcp", False)]


@pytest.mark.parametrize("port", [0, 65536, 99999])
def test_ports_outside_the_range(port: int) -> None:
    with pytest.raises(ParseError, match=rf"^line 1: log port {port} out of range: "):
        logparse.parse_rsyslog(f"*.* @h:{port}\n")


def test_a_port_of_six_digits_is_not_a_number() -> None:
    issues = Issues()
    assert logparse.parse_rsyslog("*.* @h:123456\n", issues) == [target("h", None, "udp", False)]
    assert issues.items == [(1, "*.* @h:123456",
                             "port '123456' is not a number; host kept, port unknown")]


def test_host_names_up_to_253_characters() -> None:
    name = "a" * 253
    assert logparse.parse_rsyslog(f"*.* @{name}\n") == [target(name, 514, "udp", False)]
    with pytest.raises(ParseError, match=r"implausible log host 'a{40}'"):
        logparse.parse_rsyslog(f"*.* @{name}a\n")


# --- rsyslog legacy ---------------------------------------------------------------------------

def test_legacy_forms() -> None:
    text = """# comment @ignored
*.* @udp.host
auth.* @@tcp.host:10514
kern.* @(o,z9)opt.host:1514;RSYSLOG_SyslogProtocol23Format
mail.* @[fd00::1]:6514
mail.* @[fd00::2]
*.* /var/log/messages
"""
    assert logparse.parse_rsyslog(text) == [
        target("udp.host", 514, "udp", False), target("tcp.host", 10514, "tcp", False),
        target("opt.host", 1514, "udp", False), target("fd00::1", 6514, "udp", False),
        target("fd00::2", 514, "udp", False)]


@pytest.mark.parametrize(("settings", "tls"), [
    ("$DefaultNetstreamDriver gtls\n$ActionSendStreamDriverMode 1\n", True),
    ("$DefaultNetstreamDriver ossl\n$ActionSendStreamDriverMode 1\n", True),
    ("$DefaultNetstreamDriver mbedtls\n$ActionSendStreamDriverMode 1\n", True),
    ("$DefaultNetstreamDriver gtls\n$ActionSendStreamDriverMode 0\n", False),
    ("$DefaultNetstreamDriver gtls\n$ActionSendStreamDriverMode 2\n", False),
    ("$DefaultNetstreamDriver ptcp\n$ActionSendStreamDriverMode 1\n", False),
    ("$ActionSendStreamDriverMode 1\n", False),
    ('global(DefaultNetstreamDriver="gtls")\n$ActionSendStreamDriverMode 1\n', True),
    ('global(DefaultNetstreamDriver="gtls")\n', False),
])
def test_legacy_tls_needs_mode_1_and_a_tls_driver(settings: str, tls: bool) -> None:
    text = settings + "*.* @@tls.host:6514\n*.* @udp.host\n"
    assert logparse.parse_rsyslog(text) == [target("tls.host", 6514, "tcp", tls),
                                            target("udp.host", 514, "udp", False)]


def test_the_driver_mode_applies_to_the_actions_after_it() -> None:
    text = ("$DefaultNetstreamDriver gtls\n*.* @@before:6514\n$ActionSendStreamDriverMode 1\n"
            "*.* @@after:6514\n")
    assert logparse.parse_rsyslog(text) == [target("before", 6514, "tcp", False),
                                            target("after", 6514, "tcp", True)]


def test_a_bad_driver_mode_line_is_skipped_with_its_number() -> None:
    issues = Issues()
    text = "# c\n$ActionSendStreamDriverMode one\n*.* @@h\n"
    assert logparse.parse_rsyslog(text, issues) == [target("h", 514, "tcp", False)]
    assert issues.items == [(2, "$ActionSendStreamDriverMode one",
                             "$ActionSendStreamDriverMode: 'one' is not an integer")]


def test_an_unreadable_target_is_skipped_and_the_rest_kept() -> None:
    issues = Issues()
    text = "*.* @a b:1\n*.* @good\n"
    assert logparse.parse_rsyslog(text, issues) == [target("good", 514, "udp", False)]
    assert issues.items == [(1, "*.* @a b:1", "cannot read forwarding target '@a b:1'")]


# --- rsyslog RainerScript ---------------------------------------------------------------------

@pytest.mark.parametrize(("params", "expected"), [
    ('target="h"', target("h", 514, "udp", False)),
    ('target="h" port="10514" protocol="tcp"', target("h", 10514, "tcp", False)),
    ('target="h" port="6514" protocol="TCP" StreamDriver="gtls" StreamDriverMode="1"',
     target("h", 6514, "tcp", True)),
    ('target="h" protocol="tcp" StreamDriver="ptcp" StreamDriverMode="1"',
     target("h", 514, "tcp", False)),
    ('target="h" protocol="udp" StreamDriver="gtls" StreamDriverMode="1"',
     target("h", 514, "udp", False)),
    ('target="h" protocol="tcp" StreamDriver="gtls" StreamDriverMode="0"',
     target("h", 514, "tcp", False)),
    ('target="h" protocol="tcp" StreamDriverMode="1"', target("h", 514, "tcp", False)),
])
def test_omfwd_actions(params: str, expected: dict) -> None:
    assert logparse.parse_rsyslog(f'*.* action(type="omfwd" {params})\n') == [expected]


def test_omfwd_uses_the_global_default_driver() -> None:
    text = ('global(DefaultNetstreamDriver="ossl")\n'
            '*.* action(type="omfwd" target="h" protocol="tcp" StreamDriverMode="1")\n')
    assert logparse.parse_rsyslog(text) == [target("h", 514, "tcp", True)]


def test_other_actions_and_quoted_parentheses() -> None:
    text = ('*.* action(type="omfile" file="/var/log/x")\n'
            '*.* action(type="omfwd" target="h" template="a)b")\n'
            'action(\n  type="omfwd"\n  target="multi.line"\n)\n')
    assert logparse.parse_rsyslog(text) == [target("h", 514, "udp", False),
                                            target("multi.line", 514, "udp", False)]


def test_omfwd_without_target_is_skipped_at_its_line() -> None:
    issues = Issues()
    text = '# c\n\n*.* @h\n*.* action(type="omfwd" port="1")\n'
    assert logparse.parse_rsyslog(text, issues) == [target("h", 514, "udp", False)]
    assert issues.items == [(4, 'type="omfwd" port="1"', "omfwd action without target")]
    with pytest.raises(ParseError, match="line 4: omfwd action without target"):
        logparse.parse_rsyslog(text)


def test_unterminated_action_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match=r"unterminated action\( \.\.\. \)"):
        logparse.parse_rsyslog('*.* action(type="omfwd" target="h"\n')


# --- syslog-ng --------------------------------------------------------------------------------

def ng(destinations: str, used: str) -> list[dict[str, object]]:
    log = "".join(f"destination({name}); " for name in used.split())
    return logparse.parse_syslog_ng(destinations + f"log {{ source(s); {log}}};\n")


@pytest.mark.parametrize(("driver", "expected"), [
    ('udp("h")', target("h", 514, "udp", False)),
    ('udp6("h")', target("h", 514, "udp", False)),
    ('tcp("h")', target("h", 514, "tcp", False)),
    ('tcp6("h" port(1514))', target("h", 1514, "tcp", False)),
    ('network("h")', target("h", 514, "tcp", False)),
    ('network("h" transport("udp"))', target("h", 514, "udp", False)),
    ('network("h" transport("tls"))', target("h", 6514, "tcp", True)),
    ('network("h" transport(tcp) tls(peer-verify(yes)))', target("h", 6514, "tcp", True)),
    ('syslog("h")', target("h", 601, "tcp", False)),
    ('syslog("h" transport("tls") port(7000))', target("h", 7000, "tcp", True)),
    ('network(h port( 1515 ))', target("h", 1515, "tcp", False)),
])
def test_syslog_ng_drivers_and_defaults(driver: str, expected: dict) -> None:
    assert ng(f"destination d {{ {driver}; }};\n", "d") == [expected]


def test_syslog_ng_comments_outside_quotes_only() -> None:
    text = ('destination d { network("h" template("a # b") port(1) ) ; # udp("commented")\n};\n'
            '# destination e { network("x"); };\n')
    assert ng(text, "d e") == [target("h", 1, "tcp", False)]


def test_syslog_ng_nested_blocks_and_unused_destinations() -> None:
    text = ('destination d { network("a" tls( key-file("k") ) ); };\n'
            'destination unused { network("b"); };\n'
            'destination f { udp("c"); tcp("e"); };\n')
    assert ng(text, "d f") == [target("a", 6514, "tcp", True), target("c", 514, "udp", False),
                               target("e", 514, "tcp", False)]


def test_syslog_ng_bad_port_keeps_the_host() -> None:
    issues = Issues()
    text = 'destination d { network("h" port(`p`)); };\nlog { destination(d); };\n'
    assert logparse.parse_syslog_ng(text, issues) == [target("h", None, "tcp", False)]
    assert issues.items == [(0, 'destination d: network("h" port(`p`));',
                             "port '`p`' is not a number; host kept, port unknown")]


def test_syslog_ng_bad_host_is_skipped_by_destination_name() -> None:
    issues = Issues()
    text = 'destination d { network("h/x"); };\nlog { destination(d); };\n'
    assert logparse.parse_syslog_ng(text, issues) == []
    assert issues.items == [(0, "destination d", "implausible log host 'h/x'")]


@pytest.mark.parametrize("keyword", ["log", "destination"])
def test_syslog_ng_unterminated_block(keyword: str) -> None:
    with pytest.raises(ParseError, match=rf"^unterminated {keyword} \{{ \.\.\. \}}"):
        logparse.parse_syslog_ng(f'{keyword} d {{ network("h"); \n')


# --- busybox, journal-upload, audisp-remote ---------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ('DESTINATION="remote buffer"\nREMOTE=loghost:1514\n', [target("loghost", 1514, "udp",
                                                                   False)]),
    ("DESTINATION=remote\nREMOTE=loghost # the site server\n", [target("loghost", 514, "udp",
                                                                       False)]),
    ("DESTINATION=buffer\nREMOTE=loghost\n", []),
    ("REMOTE=loghost\n", []),
    ("DESTINATION=remote\n", []),
    ("# DESTINATION=remote\n\nREMOTE=loghost\n", []),
])
def test_busybox_syslogd(text: str, expected: list) -> None:
    assert logparse.parse_busybox_syslog(text) == expected


def test_busybox_line_without_equals() -> None:
    issues = Issues()
    text = "DESTINATION=remote\nnonsense\nREMOTE=h:x\n"
    assert logparse.parse_busybox_syslog(text, issues) == [target("h", None, "udp", False)]
    assert issues.items == [(2, "nonsense", "not KEY=value"),
                            (3, "REMOTE=h:x", "port 'x' is not a number; host kept, port unknown")]
    with pytest.raises(ParseError, match=r"^line 2: not KEY=value: 'nonsense'$"):
        logparse.parse_busybox_syslog(text)


@pytest.mark.parametrize(("url", "expected"), [
    ("https://logs.plant:19532", target("logs.plant", 19532, "https", True)),
    ("http://logs.plant", target("logs.plant", 19532, "http", False)),
    ("logs.plant:8080", target("logs.plant", 8080, "http", False)),
    ("https://logs.plant/upload", target("logs.plant", 19532, "https", True)),
])
def test_journal_upload_urls(url: str, expected: dict) -> None:
    assert logparse.parse_journal_upload(f"[Upload]\n# c\nURL={url}\n") == expected


@pytest.mark.parametrize(("text", "message"), [
    ("[Upload]\nURL=ftp://h\n", "is not http"),
    ("[Upload]\nURL=https://\n", "is not http"),
    ("[Upload]\nURL=https://h:99999\n", "has a bad port"),
])
def test_journal_upload_bad_urls(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        logparse.parse_journal_upload(text)


@pytest.mark.parametrize("text", [
    "[Upload]\nURL=\n", "[Other]\nURL=https://h\n", "URL=https://h\n", "[Upload]\n# URL=h\n"])
def test_journal_upload_not_set(text: str) -> None:
    assert logparse.parse_journal_upload(text) is None


@pytest.mark.parametrize(("plugin", "remote", "expected"), [
    ("active = yes", "remote_server = h", target("h", 60, "tcp", False)),
    ("active = YES", "remote_server = h\nport = 61\ntransport = KRB5",
     target("h", 61, "krb5", True)),
    ("active = no", "remote_server = h", None),
    ("", "remote_server = h", None),
    ("active = yes", "port = 61", None),
    ("active = yes", "remote_server =", None),
])
def test_audisp_remote(plugin: str, remote: str, expected: dict | None) -> None:
    assert logparse.parse_audisp_remote(plugin, remote) == expected


def test_audisp_bad_port() -> None:
    with pytest.raises(ParseError, match=r"^port: 'sixty' is not an integer$"):
        logparse.parse_audisp_remote("active = yes", "remote_server = h\nport = sixty")


def test_adjacent_actions_are_both_read() -> None:
    text = ('*.* action(type="omfwd" target="a")action(type="omfwd" target="b")\n')
    assert logparse.parse_rsyslog(text) == [target("a", 514, "udp", False),
                                            target("b", 514, "udp", False)]


def test_long_values_are_cut_in_messages() -> None:
    issues = Issues()
    port = "x" * 30
    logparse.parse_rsyslog(f"*.* @h:{port}\n", issues)
    assert issues.items[0][2] == f"port {'x' * 20!r} is not a number; host kept, port unknown"
    bad = "@" + "[" * 70
    with pytest.raises(ParseError, match=rf"cannot read forwarding target '{re.escape(bad[:60])}'"):
        logparse.parse_rsyslog(f"*.* {bad}\n")
    url = "ftp://" + "u" * 80
    with pytest.raises(ParseError, match=rf"^journal-upload URL '{url[:60]}' is not http\(s\)$"):
        logparse.parse_journal_upload(f"[Upload]\nURL={url}\n")
    url = "http://h:99999/" + "p" * 80
    with pytest.raises(ParseError, match=rf"^journal-upload URL '{url[:60]}' has a bad port$"):
        logparse.parse_journal_upload(f"[Upload]\nURL={url}\n")


def test_an_action_at_the_very_start_of_the_configuration() -> None:
    assert logparse.parse_rsyslog('action(type="omfwd" target="first")\n') == [
        target("first", 514, "udp", False)]


@pytest.mark.parametrize("kind", ["omrelp", "omusrmsg", "omprog", "omfile", "OMFWDX", ""])
def test_only_omfwd_actions_forward(kind: str) -> None:
    text = f'*.* action(type="{kind}" target="h" port="2514")\n'
    assert logparse.parse_rsyslog(text) == []


def test_the_default_driver_is_the_whole_rest_of_the_line() -> None:
    text = ("$DefaultNetstreamDriver  GTLS  \n$ActionSendStreamDriverMode 1\n*.* @@a:6514\n")
    assert logparse.parse_rsyslog(text) == [target("a", 6514, "tcp", True)]
    text = ("$DefaultNetstreamDriver gtls ptcp\n$ActionSendStreamDriverMode 1\n*.* @@a:6514\n")
    assert logparse.parse_rsyslog(text) == [target("a", 6514, "tcp", False)]


def test_syslog_ng_comment_after_spaces_and_hash_inside_quotes() -> None:
    text = ('destination d { udp("h"); }; # destination e { udp("x"); };\n'
            'destination f { udp("a" template("x y#z")); };\n'
            "log { destination(d); destination(e); destination(f); };\n")
    assert logparse.parse_syslog_ng(text) == [target("h", 514, "udp", False),
                                              target("a", 514, "udp", False)]


@pytest.mark.parametrize(("active", "transport", "expected"), [
    ("yes", "krb5", target("h", 60, "krb5", True)),
    ("yes", "krb4", target("h", 60, "krb4", False)),
    ("yes", "gss", target("h", 60, "gss", False)),
    ("yesterday", "tcp", None), ("zz", "tcp", None), ("true", "tcp", None),
])
def test_audisp_active_and_kerberos_exactly(active: str, transport: str,
                                            expected: dict | None) -> None:
    remote = f"remote_server = h\ntransport = {transport}"
    assert logparse.parse_audisp_remote(f"active = {active}", remote) == expected
