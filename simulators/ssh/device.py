"""Simulated SSH devices (asyncssh server): Linux HMI hosts, switch CLIs, legacy crypto.

Every connection, auth attempt (username and method, never the secret) and command is
recorded in ``self.log``. Host keys are generated once per profile and kept like a real
device keeps them: in ``host_key_dir`` (default ``$OTAUDIT_SSH_SIM_KEY_DIR`` or
``$XDG_CACHE_HOME/otaudit/ssh-sim-keys``, one folder per profile name), so repeated demo
runs present the same keys. ``fresh_keys=True`` generates new keys held only by the device
object (stable across ``stop()``/``start()``): the "changed host key" scenario.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import Any

from otaudit.errors import InputError
from otaudit.simulators.base import SimulatedDevice
from otaudit.simulators.ssh.profile import Profile, ProfileError, load_profile
from otaudit.simulators.ssh.shell import answer, prompt
from otaudit.thirdparty import asyncssh

PROFILES = Path(__file__).parent / "profiles"
DEFAULT_PROFILE = "hmi-weak"
_KEY_SIZES = {"ssh-rsa": 2048, "ssh-dss": 1024}
KEY_DIR_ENV = "OTAUDIT_SSH_SIM_KEY_DIR"
# `otaudit sim ssh` flags beyond --profile/--host/--port/--log.
CLI_OPTIONS = {
    "--host-key-dir DIR": f"where the host keys persist (default ${KEY_DIR_ENV} or the "
                          "user cache, one folder per profile)",
    "--fresh-keys": "new host keys held in memory only (the 'changed host key' scenario)",
}


def default_key_dir() -> Path:
    """Where profiles' host keys persist unless ``host_key_dir`` says otherwise."""
    if os.environ.get(KEY_DIR_ENV):
        return Path(os.environ[KEY_DIR_ENV])
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "otaudit" / "ssh-sim-keys"


def _load_or_generate(key_type: str, key_dir: Path | None) -> asyncssh.SSHKey:
    path = key_dir / f"ssh_host_{key_type.replace('-', '_')}_key" if key_dir else None
    if path is not None and path.is_file():
        return asyncssh.read_private_key(path)
    size = _KEY_SIZES.get(key_type)
    key = (asyncssh.generate_private_key(key_type, key_size=size) if size
           else asyncssh.generate_private_key(key_type))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        key.write_private_key(partial)
        partial.chmod(0o600)
        os.replace(partial, path)  # concurrent starters: the last complete key wins
    return key


class _Server(asyncssh.SSHServer):
    """Per-connection auth and logging; shares the device's profile and log."""

    def __init__(self, device: SshDevice) -> None:
        self.device = device
        self.profile = device.profile
        self.conn: asyncssh.SSHServerConnection | None = None
        self.conn_id = 0
        self.peer = ""

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        peer = conn.get_extra_info("peername") or ("?", 0)
        self.peer = f"{peer[0]}:{peer[1]}"
        self.conn_id = self.device.log.open(self.peer)
        self.device.connections.add(conn)
        conn.set_extra_info(otaudit_conn_id=self.conn_id, otaudit_peer=self.peer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.device.log.close(self.conn_id)
        if self.conn is not None:
            self.device.connections.discard(self.conn)

    def _record(self, kind: str, **detail: Any) -> None:
        self.device.log.record(kind, connection=self.conn_id, peer=self.peer, **detail)

    def begin_auth(self, username: str) -> bool:
        self._record("auth_begin", username=username)
        if self.profile.auth_banner and self.conn is not None:
            self.conn.send_auth_banner(self.profile.auth_banner)
        return True

    def _password_ok(self, username: str, password: str) -> bool:
        user = self.profile.users.get(username)
        return bool(user and user.password is not None and user.password == password)

    def password_auth_supported(self) -> bool:
        return "password" in self.profile.auth_methods

    def validate_password(self, username: str, password: str) -> bool:
        ok = self._password_ok(username, password)
        self._record("auth", username=username, method="password", ok=ok)
        return ok

    def kbdint_auth_supported(self) -> bool:
        return "keyboard-interactive" in self.profile.auth_methods

    def get_kbdint_challenge(self, username: str, lang: str, submethods: str):
        return "", "", "", [("Password: ", False)]

    def validate_kbdint_response(self, username: str, responses: Any) -> bool:
        ok = len(responses) == 1 and self._password_ok(username, responses[0])
        self._record("auth", username=username, method="keyboard-interactive", ok=ok)
        return ok

    def public_key_auth_supported(self) -> bool:
        return "publickey" in self.profile.auth_methods

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        user = self.profile.users.get(username)
        offered = key.export_public_key("openssh").decode().split()[:2]
        ok = bool(user) and any(line.split()[:2] == offered for line in user.authorized_keys)
        self._record("auth", username=username, method="publickey", ok=ok)
        return ok


class SshDevice(SimulatedDevice):
    """One simulated SSH server answering from a profile folder."""

    protocol = "ssh"

    def __init__(self, profile: Profile, host: str = "127.0.0.1", port: int = 0,
                 host_key_dir: Path | None = None) -> None:
        super().__init__(host, port)
        self.profile = profile
        self.connections: set[asyncssh.SSHServerConnection] = set()
        self._server: asyncssh.SSHAcceptor | None = None
        self.host_keys = {t: _load_or_generate(t, host_key_dir) for t in profile.host_keys}

    def _keypairs(self) -> list[asyncssh.SSHKeyPair]:
        keypairs = []
        allowed = self.profile.algorithms.host_key
        for keypair in asyncssh.load_keypairs(list(self.host_keys.values())):
            if allowed is not None:
                algs = [a for a in keypair.host_key_algorithms if a.decode() in allowed]
                if not algs:
                    continue
                keypair.host_key_algorithms = algs
            keypairs.append(keypair)
        return keypairs

    def fingerprints(self) -> dict[str, str]:
        """SHA256 fingerprint of each host key, by key type."""
        return {t: k.get_fingerprint("sha256") for t, k in self.host_keys.items()}

    async def start(self) -> None:
        algs = self.profile.algorithms
        extra: dict[str, Any] = {}
        for name, value in (("kex_algs", algs.kex), ("encryption_algs", algs.ciphers),
                            ("mac_algs", algs.macs), ("compression_algs", algs.compression)):
            if value is not None:
                extra[name] = value
        self._server = await asyncssh.create_server(
            lambda: _Server(self), self.host, self.port,
            server_host_keys=self._keypairs(), server_version=self.profile.server_version,
            process_factory=self._process, encoding=None, line_editor=False,
            allow_scp=False, agent_forwarding=False, x11_forwarding=False,
            login_timeout=30, **extra,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for conn in list(self.connections):
            conn.abort()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 5)
        self._server = None

    def _record(self, process: asyncssh.SSHServerProcess, kind: str, **detail: Any) -> None:
        self.log.record(kind, connection=process.get_extra_info("otaudit_conn_id", 0),
                        peer=process.get_extra_info("otaudit_peer", ""),
                        username=process.get_extra_info("username"), **detail)

    async def _process(self, process: asyncssh.SSHServerProcess) -> None:
        try:
            if process.command is None:
                await self._shell(process)
                return
            reply, known = answer(self.profile, process.command)
            self._record(process, "exec", command=process.command, known=known)
            if reply.hang:
                await process.wait_closed()
                return
            if reply.disconnect:
                process.channel.get_connection().abort()
                return
            process.stdout.write(reply.stdout)
            process.stderr.write(reply.stderr)
            await process.stdout.drain()
            process.exit(reply.exit_status)
        except (asyncssh.Error, OSError):  # the client went away mid-answer
            process.close()

    async def _shell(self, process: asyncssh.SSHServerProcess) -> None:
        """A minimal line-based interactive session (no line editing)."""
        user = process.get_extra_info("username") or ""
        process.stdout.write(prompt(self.profile, user).encode())
        while True:
            line = await process.stdin.readline()
            if not line:
                break
            command = line.decode("utf-8", "replace").strip()
            if command in ("exit", "logout", "quit"):
                break
            if command:
                reply, known = answer(self.profile, command)
                self._record(process, "shell", command=command, known=known)
                process.stdout.write(reply.stdout + reply.stderr)
            process.stdout.write(prompt(self.profile, user).encode())
        process.exit(0)


def from_profile(profile: Path | None, host: str = "127.0.0.1", port: int = 0,
                 **options: Any) -> SshDevice:
    """Build a device from a profile folder (``None``: the bundled ``hmi-weak``).

    Options: ``host_key_dir`` (where this device's host keys persist; default
    ``default_key_dir()/<profile name>``), ``fresh_keys`` (new keys, kept in memory only).
    """
    unknown = sorted(set(options) - {"host_key_dir", "fresh_keys"})
    if unknown:
        raise InputError("ssh simulator options", [f"{name}: unknown field" for name in unknown])
    folder = Path(profile) if profile is not None else PROFILES / DEFAULT_PROFILE
    try:
        loaded = load_profile(folder)
    except ProfileError as exc:
        raise InputError(folder, [str(exc)]) from None
    fresh = options.get("fresh_keys") in (True, "true", "yes", "1")
    key_dir = options.get("host_key_dir")
    keys = None if fresh else Path(key_dir) if key_dir else default_key_dir() / loaded.name
    return SshDevice(loaded, host=host, port=int(port), host_key_dir=keys)
