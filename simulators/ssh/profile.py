"""An SSH device profile: a folder with ``profile.yaml`` and the output files it names.

The profile says how the device looks on the wire (server version, algorithms, host
key types, offered auth methods, users) and what it answers: ``commands`` maps an exact
command string to its output; ``files`` maps a path to a file so that ``cat PATH``
(and a ``cat`` glob) answers like a real shell. Real outputs can be dropped in as files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PERSONALITIES = ("linux", "cisco_ios", "hirschmann_hios", "windows")
AUTH_METHODS = ("publickey", "password", "keyboard-interactive")


class ProfileError(ValueError):
    """The profile folder is incomplete or inconsistent."""


@dataclass(frozen=True)
class CommandReply:
    """What one command answers: stdout/stderr bytes and exit status, or a hang."""

    stdout: bytes = b""
    stderr: bytes = b""
    exit_status: int = 0
    hang: bool = False
    disconnect: bool = False


@dataclass(frozen=True)
class User:
    name: str
    password: str | None = None
    authorized_keys: tuple[str, ...] = ()


@dataclass
class Algorithms:
    """Offered algorithm lists; ``None`` keeps the asyncssh default."""

    kex: list[str] | None = None
    host_key: list[str] | None = None
    ciphers: list[str] | None = None
    macs: list[str] | None = None
    compression: list[str] | None = None


@dataclass
class Profile:
    name: str
    personality: str
    hostname: str
    server_version: str
    folder: Path
    host_keys: list[str] = field(default_factory=lambda: ["ssh-ed25519"])
    algorithms: Algorithms = field(default_factory=Algorithms)
    auth_methods: list[str] = field(default_factory=lambda: ["publickey", "password"])
    auth_banner: str | None = None
    users: dict[str, User] = field(default_factory=dict)
    commands: dict[str, CommandReply] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    description: str = ""


def _reply(folder: Path, spec: Any, where: str) -> CommandReply:
    if isinstance(spec, str):
        spec = {"file": spec}
    if not isinstance(spec, dict):
        raise ProfileError(f"{where}: expected a mapping or a file name")
    unknown = set(spec) - {"file", "stdout", "stderr", "exit", "hang", "disconnect"}
    if unknown:
        raise ProfileError(f"{where}: unknown keys {sorted(unknown)}")
    stdout = spec.get("stdout", "").encode()
    if "file" in spec:
        path = folder / spec["file"]
        if not path.is_file():
            raise ProfileError(f"{where}: output file {path} is missing")
        stdout = path.read_bytes()
    return CommandReply(stdout=stdout, stderr=spec.get("stderr", "").encode(),
                        exit_status=int(spec.get("exit", 0)), hang=bool(spec.get("hang")),
                        disconnect=bool(spec.get("disconnect")))


def load_profile(folder: Path) -> Profile:
    """Read ``folder/profile.yaml``; raise ``ProfileError`` naming what is wrong."""
    try:
        return _load(Path(folder))
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        if isinstance(exc, ProfileError):
            raise
        raise ProfileError(f"{folder}: malformed profile ({type(exc).__name__}: {exc})") from None


def _load(folder: Path) -> Profile:
    source = folder / "profile.yaml" if folder.is_dir() else folder
    folder = source.parent
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ProfileError(f"{source}: {exc}") from None
    personality = data.get("personality", "linux")
    if personality not in PERSONALITIES:
        raise ProfileError(f"{source}: personality must be one of {PERSONALITIES}")
    methods = list(data.get("auth_methods", ["publickey", "password"]))
    if not set(methods) <= set(AUTH_METHODS):
        raise ProfileError(f"{source}: auth_methods must be among {AUTH_METHODS}")
    algs = data.get("algorithms") or {}
    users = {}
    for entry in data.get("users", []):
        user = User(name=str(entry["name"]), password=entry.get("password"),
                    authorized_keys=tuple(entry.get("authorized_keys", ())))
        users[user.name] = user
    commands = {str(cmd): _reply(folder, spec, f"{source}: command {cmd!r}")
                for cmd, spec in (data.get("commands") or {}).items()}
    files = {}
    for path, name in (data.get("files") or {}).items():
        file = folder / name
        if not file.is_file():
            raise ProfileError(f"{source}: file for {path} ({file}) is missing")
        files[str(path)] = file.read_bytes()
    return Profile(
        name=str(data.get("name", folder.name)),
        description=str(data.get("description", "")),
        personality=personality,
        hostname=str(data.get("hostname", folder.name)),
        server_version=str(data.get("server_version", "OpenSSH_9.2p1")),
        folder=folder,
        host_keys=list(data.get("host_keys", ["ssh-ed25519"])),
        algorithms=Algorithms(kex=algs.get("kex"), host_key=algs.get("host_key"),
                              ciphers=algs.get("ciphers"), macs=algs.get("macs"),
                              compression=algs.get("compression")),
        auth_methods=methods,
        auth_banner=data.get("auth_banner"),
        users=users,
        commands=commands,
        files=files,
    )
