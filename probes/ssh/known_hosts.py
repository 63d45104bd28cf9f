"""Trust-on-first-use store of SSH host keys in OpenSSH ``known_hosts`` format.

Entries are ``[host]:port keytype base64`` (bare ``host`` for port 22). The first key
seen for an endpoint is pinned; a different key of the same endpoint later is a
changed host key (a possible man in the middle): the probe then does not log in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from otaudit.thirdparty import asyncssh

ENV_PATH = "OTAUDIT_SSH_KNOWN_HOSTS"


def default_path() -> Path:
    """``$OTAUDIT_SSH_KNOWN_HOSTS`` or ``$XDG_DATA_HOME/otaudit/known_hosts``."""
    if os.environ.get(ENV_PATH):
        return Path(os.environ[ENV_PATH])
    data = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data) / "otaudit" / "known_hosts"


def host_pattern(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


def fingerprint(key: asyncssh.SSHKey) -> str:
    return key.get_fingerprint("sha256")


@dataclass(frozen=True)
class Verdict:
    """Outcome of checking a presented key: ``pinned`` (first use), ``match`` or ``changed``."""

    state: str
    presented: str
    pinned: tuple[str, ...] = ()


class KnownHosts:
    """The store file; reads on every check so concurrent runs see each other's pins."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path else default_path()

    def keys_for(self, host: str, port: int) -> list[asyncssh.SSHKey]:
        pattern = host_pattern(host, port)
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        keys = []
        for line in lines:
            words = line.split()
            if len(words) < 3 or line.startswith(("#", "@")):
                continue
            if pattern in words[0].split(","):
                try:
                    keys.append(asyncssh.import_public_key(f"{words[1]} {words[2]}"))
                except (asyncssh.KeyImportError, ValueError):
                    continue
        return keys

    def pinned_algorithms(self, host: str, port: int) -> list[str]:
        """Host key algorithms of the pinned keys, to be offered first."""
        algs: list[str] = []
        for key in self.keys_for(host, port):
            algs += [a.decode() for a in key.sig_algorithms if a.decode() not in algs]
        return algs

    def check(self, host: str, port: int, key: asyncssh.SSHKey) -> Verdict:
        """Compare ``key`` with the pins of the endpoint (without writing)."""
        pinned = self.keys_for(host, port)
        presented = fingerprint(key)
        if not pinned:
            return Verdict("pinned", presented)
        if any(p.public_data == key.public_data for p in pinned):
            return Verdict("match", presented, tuple(fingerprint(p) for p in pinned))
        return Verdict("changed", presented, tuple(fingerprint(p) for p in pinned))

    def pin(self, host: str, port: int, key: asyncssh.SSHKey) -> None:
        """Append the key for the endpoint (file mode 0600, folder 0700)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        line = f"{host_pattern(host, port)} {key.export_public_key('openssh').decode().strip()}"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write(" ".join(line.split()[:3]) + "\n")
