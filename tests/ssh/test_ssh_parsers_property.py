"""Property tests: any text (or bytes) → a result or ParseError, never another exception."""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otaudit.probes.base import ParseError
from otaudit.probes.ssh.parse import (
    audit,
    hios,
    host_inventory,
    ios,
    os_release,
    pam,
    sshd,
    timesync,
    transport,
)
from otaudit.probes.ssh.parse import logging as logparse
from otaudit.probes.ssh.parse.common import decode_text, redact_secrets

PROFILES = Path(__file__).parents[2] / "simulators" / "ssh" / "profiles"
LINES = sorted({line for f in PROFILES.glob("*/outputs/*")
                for line in f.read_text().splitlines()})
FUZZ = settings(max_examples=120, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Real lines, shuffled and mixed with arbitrary text, reach deeper than random text alone.
config_text = st.one_of(
    st.text(max_size=300),
    st.lists(st.one_of(st.sampled_from(LINES), st.text(max_size=30),
                       st.sampled_from(LINES).map(lambda s: s[: len(s) // 2])),
             max_size=40).map("\n".join),
)


def _pam_all(text: str) -> object:
    stack = pam.parse_pam_stack(text)
    conf = pam.parse_simple_conf(text)
    return (pam.min_length(stack, conf), pam.hash_method(stack, pam.parse_login_defs(text)
                                                         if text.isupper() else None),
            pam.lockout(stack, conf))


PIPELINES: dict[str, Callable[[str], object]] = {
    "os_release": lambda t: os_release.os_identity(os_release.parse_os_release(t)),
    "uname": os_release.parse_uname,
    "sshd": lambda t: sshd.sshd_facts(sshd.parse_sshd_t(t)),
    "login_defs": lambda t: pam.login_defs_facts(pam.parse_login_defs(t)),
    "pam": _pam_all,
    "rsyslog": logparse.parse_rsyslog,
    "journal_upload": logparse.parse_journal_upload,
    "audisp": lambda t: logparse.parse_audisp_remote(t, t),
    "is_active": audit.parse_is_active,
    "auditctl": audit.parse_auditctl_rules,
    "timedatectl": lambda t: timesync.timedatectl_synchronized(
        timesync.parse_timedatectl_show(t)),
    "chronyc": timesync.parse_chronyc_tracking,
    "chrony_conf": timesync.parse_chrony_sources,
    "timesyncd": timesync.parse_timesyncd_sources,
    "ss": host_inventory.parse_ss,
    "dpkg": host_inventory.parse_dpkg_query,
    "units": host_inventory.parse_enabled_units,
    "show_version": ios.parse_show_version,
    "running_config": lambda t: ios.ios_config_facts(ios.parse_running_config(t)),
    "system_info": lambda t: hios.system_info_identity(hios.parse_system_info(t)),
    "hios_script": lambda t: hios.hios_config_facts(hios.parse_script(t), "2.0"),
}


@pytest.mark.parametrize("name", sorted(PIPELINES))
@FUZZ
@given(text=config_text)
def test_text_parsers_raise_only_parse_error(name: str, text: str) -> None:
    with contextlib.suppress(ParseError):
        PIPELINES[name](text)


@FUZZ
@given(text=config_text)
def test_redaction_never_fails_and_keeps_lines(text: str) -> None:
    assert len(redact_secrets(text).splitlines()) == len(text.splitlines())


@FUZZ
@given(raw=st.binary(max_size=200))
def test_decode_text_accepts_text_or_raises_parse_error(raw: bytes) -> None:
    try:
        text = decode_text(raw)
    except ParseError:
        return
    assert text.encode() == raw


def _name_lists(lists: list[list[str]]) -> bytes:
    out = b""
    for names in lists:
        data = ",".join(names).encode()
        out += struct.pack(">I", len(data)) + data
    return out


@FUZZ
@given(raw=st.binary(max_size=400),
       lists=st.lists(st.lists(st.text(min_size=1, max_size=12), max_size=4),
                      min_size=10, max_size=10),
       cut=st.integers(min_value=0, max_value=600))
def test_transport_parsers_raise_only_parse_error(raw: bytes, lists: list[list[str]],
                                                  cut: int) -> None:
    payload = b"\x14" + bytes(16) + _name_lists(lists) + b"\x00\x00\x00\x00\x00"
    for data in (raw, payload, payload[:cut], b"\x14" + raw):
        for parse in (transport.parse_identification, transport.parse_packet_header,
                      transport.parse_kexinit):
            with contextlib.suppress(ParseError):
                parse(data)


def test_kexinit_round_trip() -> None:
    lists = [["curve25519-sha256", "kex-strict-s-v00@openssh.com"], ["ssh-ed25519"],
             ["aes128-ctr"], ["aes256-ctr"], ["hmac-sha2-256"], ["hmac-sha1"], ["none"],
             ["none"], [], []]
    parsed = transport.parse_kexinit(b"\x14" + bytes(16) + _name_lists(lists) + bytes(5))
    assert parsed.kex == lists[0] and parsed.host_key == ["ssh-ed25519"]
    assert (parsed.ciphers_c2s, parsed.ciphers_s2c) == (["aes128-ctr"], ["aes256-ctr"])
    assert (parsed.macs_c2s, parsed.macs_s2c) == (["hmac-sha2-256"], ["hmac-sha1"])
    ident = transport.parse_identification(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u2\r\n")
    assert (ident.proto_version, ident.software, ident.comments) == (
        "2.0", "OpenSSH_9.2p1", "Debian-2+deb12u2")
    with pytest.raises(ParseError):
        transport.parse_kexinit(b"\x15" + bytes(40))
    with pytest.raises(ParseError):
        transport.parse_packet_header(struct.pack(">IB", 10_000_000, 4))
