"""Weak-algorithm lists (weak_algorithms.yaml) and the client's modern and legacy sets."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

WEAK_FILE = Path(__file__).with_name("weak_algorithms.yaml")
CATEGORIES = ("kex", "host_key", "ciphers", "macs")


@cache
def weak_patterns() -> dict[str, tuple[str, ...]]:
    data = yaml.safe_load(WEAK_FILE.read_text(encoding="utf-8"))
    return {c: tuple(str(p) for p in data.get(c, ())) for c in CATEGORIES}


def weak(category: str, offered: list[str]) -> list[str]:
    """The offered names matching the weak list of ``category``, in offered order."""
    patterns = weak_patterns()[category]
    return [name for name in offered if any(fnmatch.fnmatchcase(name, p) for p in patterns)]


@dataclass(frozen=True)
class AlgorithmSet:
    name: str
    kex: tuple[str, ...]
    host_key: tuple[str, ...]
    ciphers: tuple[str, ...]
    macs: tuple[str, ...]

    def negotiable(self, kex: list[str], host_key: list[str], ciphers: list[str],
                   macs: list[str]) -> bool:
        """Whether each category shares at least one name with the server's offer."""
        return all(set(mine) & set(theirs) for mine, theirs in
                   ((self.kex, kex), (self.host_key, host_key), (self.ciphers, ciphers),
                    (self.macs, macs)))

    def connect_options(self, preferred_host_key: list[str] | None = None) -> dict[str, list]:
        host_keys = list(self.host_key)
        if preferred_host_key:
            first = [a for a in preferred_host_key if a in host_keys]
            host_keys = first + [a for a in host_keys if a not in first]
        return {"kex_algs": list(self.kex), "server_host_key_algs": host_keys,
                "encryption_algs": list(self.ciphers), "mac_algs": list(self.macs),
                "compression_algs": ["none"]}


_MODERN_KEX = ("mlkem768x25519-sha256", "curve25519-sha256", "curve25519-sha256@libssh.org",
               "curve448-sha512", "ecdh-sha2-nistp521", "ecdh-sha2-nistp384",
               "ecdh-sha2-nistp256", "diffie-hellman-group-exchange-sha256",
               "diffie-hellman-group18-sha512", "diffie-hellman-group16-sha512",
               "diffie-hellman-group14-sha256")
_MODERN_HOST_KEY = ("ssh-ed25519", "ssh-ed448", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
                    "ecdsa-sha2-nistp521", "rsa-sha2-512", "rsa-sha2-256")
_MODERN_CIPHERS = ("chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com",
                   "aes128-gcm@openssh.com", "aes256-ctr", "aes192-ctr", "aes128-ctr")
_MODERN_MACS = ("hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com",
                "umac-128-etm@openssh.com", "hmac-sha2-256", "hmac-sha2-512",
                "umac-128@openssh.com")

MODERN = AlgorithmSet("modern", _MODERN_KEX, _MODERN_HOST_KEY, _MODERN_CIPHERS, _MODERN_MACS)
LEGACY = AlgorithmSet(
    "legacy",
    (*_MODERN_KEX, "diffie-hellman-group14-sha1", "diffie-hellman-group-exchange-sha1",
     "diffie-hellman-group1-sha1"),
    (*_MODERN_HOST_KEY, "ssh-rsa", "ssh-dss"),
    (*_MODERN_CIPHERS, "aes256-cbc", "aes192-cbc", "aes128-cbc", "3des-cbc"),
    (*_MODERN_MACS, "hmac-sha1", "hmac-sha1-96", "hmac-md5", "hmac-md5-96"),
)
