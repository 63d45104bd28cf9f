"""One weak-algorithm table judges both the wire offer and sshd's effective configuration."""

from __future__ import annotations

import pytest

from otaudit.probes.ssh.algorithms import LEGACY, MODERN, weak
from otaudit.probes.ssh.host_facts import _with_weak


@pytest.mark.parametrize(("category", "name"), [
    ("macs", "hmac-sha1"), ("macs", "hmac-sha1-etm@openssh.com"), ("macs", "hmac-sha1-96"),
    ("macs", "umac-64@openssh.com"), ("macs", "umac-64-etm@openssh.com"),
    ("macs", "hmac-md5"), ("macs", "umac-32@openssh.com"),
    ("ciphers", "aes128-cbc"), ("ciphers", "rijndael-cbc@lysator.liu.se"),
    ("ciphers", "3des-cbc"), ("ciphers", "arcfour256"), ("ciphers", "blowfish-cbc"),
    ("kex", "diffie-hellman-group14-sha1"), ("kex", "gss-gex-sha1-toWM5Slw5Ew8Mqkay+al2g=="),
    ("host_key", "ssh-rsa"), ("host_key", "ssh-dss"),
])
def test_weak_names(category: str, name: str) -> None:
    assert weak(category, [name]) == [name]


@pytest.mark.parametrize(("category", "name"), [
    ("macs", "hmac-sha2-256"), ("macs", "hmac-sha2-512-etm@openssh.com"),
    ("macs", "umac-128@openssh.com"), ("ciphers", "aes256-ctr"),
    ("ciphers", "chacha20-poly1305@openssh.com"), ("kex", "diffie-hellman-group14-sha256"),
    ("kex", "curve25519-sha256"), ("host_key", "rsa-sha2-512"), ("host_key", "ssh-ed25519"),
])
def test_strong_names(category: str, name: str) -> None:
    assert weak(category, [name]) == []


def test_modern_client_set_has_nothing_weak_and_legacy_adds_only_weak() -> None:
    for category in ("kex", "host_key", "ciphers", "macs"):
        modern = list(getattr(MODERN, category))
        assert weak(category, modern) == []
        added = [a for a in getattr(LEGACY, category) if a not in modern]
        assert weak(category, added) == added


def test_sshd_config_lists_are_judged_by_the_same_table() -> None:
    facts = _with_weak({"sshd.ciphers": ["aes256-gcm@openssh.com", "aes128-cbc"],
                        "sshd.macs": ["hmac-sha2-256", "hmac-sha1", "umac-64@openssh.com"],
                        "sshd.kex_algorithms": ["curve25519-sha256"]})
    assert facts["sshd.weak_ciphers"] == ["aes128-cbc"]
    assert facts["sshd.weak_macs"] == ["hmac-sha1", "umac-64@openssh.com"]
    assert facts["sshd.weak_kex"] == []
    assert "sshd.weak_macs" not in _with_weak({})  # no list, no judgement (stays unknown)
