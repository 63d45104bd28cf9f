"""WinRM probe ↔ WS-Man responder over real loopback sockets (HTTPS, pypsrp, pyspnego)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import logging
import threading
import time
from pathlib import Path

import pytest
import yaml
from winrm_helpers import (
    PASSWORD,
    PASSWORD_VAR,
    SOAP_KINDS,
    commands_seen,
    host_profile_copy,
    listener,
    probe,
    soap_records,
    target,
)

from otaudit.observation import AssetKind, AssetRef, ProbeStatus
from otaudit.probes.base import ForbiddenOperation, ProbeContext, ProbeTarget
from otaudit.probes.runner import run_probe
from otaudit.probes.ssh.allowlist import ALLOWLIST
from otaudit.probes.ssh.client import MAX_OUTPUT
from otaudit.probes.ssh.probe import SshOptions, SshProbe
from otaudit.probes.winrm.client import WinrmConfig, WinrmSession
from otaudit.probes.winrm.facts import FACTS, WINDOWS_HOST
from otaudit.probes.winrm.probe import WinrmOptions, WinrmProbe
from otaudit.simulators import bundled_profile
from otaudit.simulators.ssh.device import from_profile as ssh_device

WINDOWS = ALLOWLIST["windows"]


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_VAR, PASSWORD)


async def _over_ssh(profile: str, tmp_path: Path):
    device = ssh_device(bundled_profile("ssh", profile), fresh_keys=True)
    async with device:
        options = SshOptions(user="auditor", password={"env": PASSWORD_VAR},
                             personality="windows", known_hosts=tmp_path / "kh")
        return await run_probe(SshProbe(), ProbeTarget(
            asset=AssetRef(id="hmi", kind=AssetKind.HMI, zone="control"), host=device.host,
            port=device.port, options=options), collector_id="test", site="test", deadline=30)


# ---- the same host, the same facts ---------------------------------------------------------

@pytest.mark.parametrize("profile", ["windows-weak", "windows-hardened"])
async def test_facts_equal_the_ssh_paths(profile: str, tmp_path: Path) -> None:
    over_ssh = await _over_ssh(profile, tmp_path)
    auth = "basic" if profile == "windows-weak" else "ntlm"  # hardened: no Basic offered
    async with listener(profile) as device:
        obs = await probe(device, auth=auth)
    assert obs.status is ProbeStatus.OK and over_ssh.status is ProbeStatus.OK, obs.reason
    winrm_values = {p: obs.facts[p].value for p in WINDOWS_HOST if p in obs.facts}
    ssh_values = {p: over_ssh.facts[p].value for p in WINDOWS_HOST if p in over_ssh.facts}
    assert winrm_values == ssh_values
    assert len(winrm_values) >= len(WINDOWS_HOST) - 2  # nearly all read, not all unknown
    assert {p: obs.unknown[p] for p in WINDOWS_HOST if p in obs.unknown} == {
        p: over_ssh.unknown[p] for p in WINDOWS_HOST if p in over_ssh.unknown}
    assert obs.facts["winrm.scheme"].value == "https"
    assert obs.facts["winrm.auth"].value == auth
    assert obs.facts["winrm.cert_sha256"].value == device.cert_sha256
    assert obs.facts["winrm.cert_self_signed"].value is True
    assert obs.facts["winrm.cert_days_left"].value > 3000
    assert obs.facts["winrm.auth_offered"].value == (
        ["negotiate", "basic"] if profile == "windows-weak" else ["negotiate"])
    assert set(obs.facts) | set(obs.unknown) == set(FACTS)
    # every fact keeps its source: the evidence says the command went over WinRM
    requests = {e.id: e.request for e in obs.evidence}
    smb = obs.facts["win.smb1_enabled"]
    assert smb.evidence and all(requests[e].startswith("winrm exec 'Get-SmbServer")
                                for e in smb.evidence)


async def test_ntlm_login_is_recorded_without_the_secret() -> None:
    async with listener("windows-weak") as device:
        obs = await probe(device, auth="ntlm")
    assert obs.status is ProbeStatus.OK, obs.reason
    auths = [r.detail for r in device.log.records if r.kind == "auth"]
    assert auths == [{"username": "auditor", "method": "ntlm", "ok": True}]
    assert PASSWORD not in json.dumps([r.detail for r in device.log.records])


# ---- only allowlisted commands, one connection, one shell ----------------------------------

async def test_request_log_shows_only_the_allowlist_on_one_connection() -> None:
    async with listener("windows-weak") as device:
        obs = await probe(device)
    assert obs.status is ProbeStatus.OK, obs.reason
    assert commands_seen(device) == list(WINDOWS)
    assert all(r.detail["known"] for r in device.log.records if r.kind == "command")
    kinds = [r.kind for r in soap_records(device)]
    assert kinds[0] == "create" and kinds[-1] == "delete"
    assert kinds.count("command") == kinds.count("signal") == len(WINDOWS)
    assert {r.kind for r in device.log.records} <= {"auth", *SOAP_KINDS}
    assert device.log.connections == device.log.max_concurrent == 1
    assert not device.shells  # the shell was deleted


def _session(device, password: str = PASSWORD) -> WinrmSession:
    cfg = WinrmConfig(host=device.host, port=device.port, scheme="https", auth="basic",
                      user="auditor", password=password, timeout=5.0,
                      cert_sha256=device.cert_sha256)
    return WinrmSession(cfg, lambda: None, None, threading.Event())


async def test_a_command_outside_the_allowlist_is_refused_before_sending() -> None:
    async with listener("windows-weak") as device:
        session = _session(device)
        await asyncio.to_thread(session.open)
        try:
            for command in ("Stop-Computer -Force", "net accounts /maxpwage:unlimited",
                            WINDOWS[0] + "; Restart-Service WinRM"):
                with pytest.raises(ForbiddenOperation):
                    await asyncio.to_thread(session.run, command)
        finally:
            await asyncio.to_thread(session.close)
    assert commands_seen(device) == []
    assert [r.kind for r in soap_records(device)] == ["create", "delete"]


async def test_the_responder_refuses_what_its_profile_does_not_know() -> None:
    from pypsrp.shell import Process, WinRS
    from pypsrp.wsman import WSMan

    from otaudit.probes.winrm.client import POWERSHELL_ARGS, clixml_text, encode_command

    def run() -> list[tuple[bytes, bytes, int | None]]:
        wsman = WSMan(device.host, port=device.port, username="auditor", password=PASSWORD,
                      auth="basic", cert_validation=False, no_proxy=True)
        out = []
        with wsman, WinRS(wsman) as shell:
            for exe, args in (("powershell.exe", [*POWERSHELL_ARGS,
                                                  encode_command("Stop-Computer -Force")]),
                              ("cmd.exe", ["/c", "shutdown", "/s"])):
                process = Process(shell, exe, args)
                process.invoke()
                out.append((process.stdout, clixml_text(process.stderr), process.rc))
        return out

    async with listener("windows-weak") as device:
        (ps_out, ps_err, ps_rc), (cmd_out, cmd_err, cmd_rc) = await asyncio.to_thread(run)
    assert (ps_out, ps_rc) == (b"", 1)
    assert b"'Stop-Computer' is not recognized as the name of a cmdlet" in ps_err
    assert (cmd_out, cmd_rc) == (b"", 1) and b"is not recognized as an internal" in cmd_err
    seen = [(r.detail["command"], r.detail["known"]) for r in device.log.records
            if r.kind == "command"]
    assert seen == [("Stop-Computer -Force", False), ("cmd.exe /c shutdown /s", False)]


# ---- TLS ------------------------------------------------------------------------------------

async def test_an_untrusted_certificate_stops_the_run_before_any_request() -> None:
    async with listener("windows-weak") as device:
        obs = await probe(device, cert_sha256=None)
    assert obs.status is ProbeStatus.ERROR
    assert "not trusted" in obs.reason and "cert_sha256" in obs.reason
    assert soap_records(device) == [] and not [r for r in device.log.records
                                               if r.kind == "auth"]
    assert all(p in obs.unknown for p in WINDOWS_HOST)


async def test_a_wrong_pin_stops_the_run() -> None:
    async with listener("windows-weak") as device:
        obs = await probe(device, cert_sha256="ab" * 32)
    assert obs.status is ProbeStatus.ERROR
    assert "does not match the pinned cert_sha256" in obs.reason
    assert soap_records(device) == []


async def test_the_listener_certificate_as_ca_file_is_trusted(tmp_path: Path) -> None:
    async with listener("windows-weak") as device:
        ca = tmp_path / "listener.pem"
        ca.write_bytes(device.cert_pem)
        obs = await probe(device, cert_sha256=None, ca_file=str(ca))
    assert obs.status is ProbeStatus.OK, obs.reason
    assert obs.facts["win.smb1_enabled"].value is True


# ---- failures end this run only -----------------------------------------------------------

@pytest.mark.parametrize("broken", ["create", "command", "receive", "signal"])
async def test_a_malformed_soap_reply_fails_the_run_with_a_reason(broken: str) -> None:
    async with listener("windows-weak", break_reply=broken) as device:
        obs = await probe(device)
    assert obs.status is ProbeStatus.ERROR
    assert "malformed WS-Man reply" in obs.reason, obs.reason
    assert all(p in obs.unknown for p in WINDOWS_HOST)
    assert obs.facts["winrm.auth_offered"].value == ["negotiate", "basic"]  # read before
    # the process goes on: the next run on a healthy listener reads the host
    async with listener("windows-weak") as healthy:
        again = await probe(healthy)
    assert again.status is ProbeStatus.OK and again.facts["win.smb1_enabled"].value is True


@pytest.mark.parametrize("auth", ["basic", "ntlm"])
async def test_a_wrong_password_is_auth_failed(auth: str, monkeypatch: pytest.MonkeyPatch
                                               ) -> None:
    monkeypatch.setenv(PASSWORD_VAR, "not-the-password")
    async with listener("windows-weak") as device:
        obs = await probe(device, auth=auth)
    assert obs.status is ProbeStatus.AUTH_FAILED, obs.reason
    assert f"{auth} authentication as 'auditor' failed" in obs.reason
    assert [r.detail["ok"] for r in device.log.records if r.kind == "auth"] == [False]
    assert soap_records(device) == []
    assert obs.facts["winrm.auth_offered"].value == ["negotiate", "basic"]
    assert "winrm.auth" in obs.unknown  # no login succeeded


async def test_a_hanging_command_makes_only_its_facts_unknown(tmp_path: Path) -> None:
    def hang_smb(spec: dict, folder: Path) -> None:
        command = next(c for c in spec["commands"] if c.startswith("Get-SmbServer"))
        spec["commands"][command]["hang"] = True

    profile = host_profile_copy("windows-weak", tmp_path, hang_smb)
    async with listener(profile) as device:
        obs = await probe(device, op_timeout=2.0)
    assert obs.status is ProbeStatus.OK, obs.reason
    assert "gave no complete answer within 2 s" in obs.unknown["win.smb1_enabled"]
    assert obs.facts["win.rdp_nla"].value is False  # the next commands still ran
    assert "Get-SmbServerConfiguration" in [r.detail["command"][:26] for r in
                                            device.log.records if r.kind == "signal"]


async def test_output_is_bounded(tmp_path: Path) -> None:
    def big_software(spec: dict, folder: Path) -> None:
        command = next(c for c in spec["commands"] if c.startswith("Get-ItemProperty 'HKLM:\\"
                                                                    "SOFTWARE\\Microsoft\\"
                                                                    "Windows\\CurrentVersion"))
        (folder / "outputs" / "big.json").write_bytes(b"[" + b" " * (MAX_OUTPUT + 10) + b"]")
        spec["commands"][command] = {"file": "outputs/big.json"}

    profile = host_profile_copy("windows-weak", tmp_path, big_software)
    async with listener(profile) as device:
        obs = await probe(device)
    assert obs.status is ProbeStatus.OK, obs.reason
    assert f"output exceeded {MAX_OUTPUT} bytes" in obs.unknown["software.packages"]
    assert obs.facts["win.smb1_enabled"].value is True
    receives = [r for r in device.log.records if r.kind == "receive"
                and r.detail["command"].startswith("Get-ItemProperty 'HKLM:\\SOFTWARE\\Microsoft"
                                                   "\\Windows\\CurrentVersion")]
    assert len(receives) >= 2  # chunked by MaxEnvelopeSize, stopped at the bound


# ---- pacing and secrets -----------------------------------------------------------------------

async def test_requests_are_paced_from_the_wire() -> None:
    async with listener("windows-weak") as device:
        obs = await probe(device, min_interval=0.1)
    assert obs.status is ProbeStatus.OK, obs.reason
    times = sorted(r.at for r in soap_records(device))
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # the listener stamps a request when its head has been read, in the event loop that
    # also runs the probe: a stamp can be late under load, which shortens one gap and
    # lengthens the next. Over the run the lateness cancels out (only the first and last
    # stamps count); no single gap comes near the unpaced few milliseconds.
    assert len(gaps) >= 3 * len(WINDOWS)
    assert times[-1] - times[0] >= 0.1 * len(gaps) - 0.02, (times[-1] - times[0], len(gaps))
    assert min(gaps) >= 0.05, min(gaps)


class Timeline(ProbeContext):
    """Records when ``pace()`` let a request go and when ``sent()`` was told of a write."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.events: list[tuple[str, float]] = []

    async def pace(self) -> None:
        await super().pace()
        self.events.append(("pace", time.monotonic()))

    def sent(self) -> None:
        super().sent()
        self.events.append(("sent", time.monotonic()))


@pytest.mark.parametrize("auth", ["basic", "ntlm"])
async def test_each_ws_man_request_is_paced_and_reported_on_the_wire(auth: str) -> None:
    ctx = Timeline(timeout=10.0, min_interval=0.0)
    async with listener("windows-weak") as device:
        await WinrmProbe().collect(target(device, auth=auth), ctx)
    steps: list[int] = []  # HTTP writes reported after each pace(), before the next one
    for kind, _ in ctx.events:
        if kind == "pace":
            steps.append(0)
        elif steps:
            steps[-1] += 1
    # one pace per WS-Man request, and one for the unauthenticated POST before them
    assert len(steps) == len(soap_records(device)) + 1
    assert all(steps), steps  # each put its request on the wire and said so
    assert ctx.events[0][0] == "pace"  # nothing is written before the first pace


@pytest.mark.parametrize("auth", ["basic", "ntlm"])
async def test_secrets_never_reach_logs_or_the_observation(
        auth: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.DEBUG)
    basic = base64.b64encode(f"auditor:{PASSWORD}".encode()).decode()
    async with listener("windows-weak") as device:
        good = await probe(device, auth=auth)
        monkeypatch.setenv(PASSWORD_VAR, PASSWORD + "-wrong")
        bad = await probe(device, auth=auth)
    assert good.status is ProbeStatus.OK and bad.status is ProbeStatus.AUTH_FAILED
    text = caplog.text + good.model_dump_json() + bad.model_dump_json()
    assert "pypsrp" in caplog.text or "urllib3" in caplog.text  # the libraries did log
    for secret in (PASSWORD, basic):
        assert secret not in text


# ---- options ----------------------------------------------------------------------------------

def test_options_refuse_basic_over_http_and_tls_options_without_https() -> None:
    from pydantic import ValidationError

    from otaudit.probes.winrm.probe import WinrmOptions

    with pytest.raises(ValidationError, match="in clear"):
        WinrmOptions(user="u", password={"env": "X"}, scheme="http", auth="basic")
    with pytest.raises(ValidationError, match="https only"):
        WinrmOptions(scheme="http", auth="ntlm", cert_sha256="ab" * 32)
    with pytest.raises(ValidationError, match="64 hex"):
        WinrmOptions(cert_sha256="ab" * 31)
    with pytest.raises(ValidationError, match="not both"):
        WinrmOptions(cert_sha256="ab" * 32, ca_file="/x.pem")
    with pytest.raises(ValidationError, match="needs a user"):
        WinrmOptions(password={"env": "X"})
    pinned = WinrmOptions(cert_sha256=":".join(["AB"] * 32))
    assert pinned.cert_sha256 == "ab" * 32 and pinned.scheme == "https"
    assert pinned.auth == "ntlm"
    cli = WinrmOptions.from_cli({"user": "u", "password-env": "PW", "auth": "kerberos"})
    assert cli.password is not None and cli.password.env == "PW" and cli.auth == "kerberos"


@pytest.mark.parametrize("auth", ["basic", "ntlm", "kerberos"])
async def test_without_credentials_only_the_offered_authentication_is_read(auth: str) -> None:
    async with listener("windows-weak") as device:
        obs = await probe(device, user=None, password=None, auth=auth)
    assert obs.status is ProbeStatus.OK, obs.reason
    assert obs.facts["winrm.scheme"].value == "https"
    assert obs.facts["winrm.auth_offered"].value == ["negotiate", "basic"]
    assert obs.facts["winrm.cert_sha256"].value == device.cert_sha256
    offered = {e.id: e for e in obs.evidence}[obs.facts["winrm.auth_offered"].evidence[0]]
    assert "HTTP 401" in offered.excerpt and "Microsoft-HTTPAPI/2.0" in offered.excerpt
    assert obs.unknown["win.smb1_enabled"] == "no credentials configured"
    assert obs.unknown["winrm.auth"] == "no credentials configured"
    assert device.log.connections == 1 and device.log.records == []  # no login, no shell


async def test_a_port_that_is_not_winrm_is_named() -> None:
    async def not_winrm(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 2\r\n\r\nhi")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(not_winrm, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        obs = await run_probe(WinrmProbe(), ProbeTarget(
            asset=AssetRef(id="x", kind=AssetKind.HMI, zone="z"), host="127.0.0.1", port=port,
            options=WinrmOptions(scheme="http", auth="ntlm")), collector_id="t", site="t",
            deadline=10)
    assert obs.status is ProbeStatus.ERROR
    assert "HTTP 200 to an unauthenticated request (Server 'nginx')" in obs.reason


async def test_http_only_when_written_and_then_ntlm_sealed(tmp_path: Path) -> None:
    profile = tmp_path / "http.yaml"
    profile.write_text(yaml.safe_dump({"name": "windows-weak-http", "scheme": "http",
                                       "host_profile": "windows-weak", "auth": ["ntlm"]}))
    async with listener(profile) as device:
        default = await probe(device, auth="ntlm", cert_sha256=None)  # https unless written
        obs = await probe(device, scheme="http", auth="ntlm", cert_sha256=None)
    assert default.status is ProbeStatus.ERROR
    assert "TLS handshake with" in default.reason and "https listener" in default.reason
    assert obs.status is ProbeStatus.OK, obs.reason
    assert obs.facts["winrm.scheme"].value == "http"
    assert obs.unknown["winrm.cert_sha256"] == "scheme http: no certificate"
    assert obs.facts["win.smb1_enabled"].value is True
    soap = soap_records(device)
    assert soap and all(r.detail["encrypted"] for r in soap)  # every message sealed
    assert commands_seen(device) == list(WINDOWS)


async def test_the_deadline_ends_the_run_and_its_worker_sends_nothing_more(tmp_path: Path
                                                                          ) -> None:
    def hang_first(spec: dict, folder: Path) -> None:
        spec["commands"][WINDOWS[0]]["hang"] = True

    profile = host_profile_copy("windows-weak", tmp_path, hang_first)
    async with listener(profile) as device:
        obs = await probe(device, deadline=2.0, op_timeout=8.0)
        seen = len(device.log.records)
        await asyncio.sleep(0.5)
        assert obs.status is ProbeStatus.TIMEOUT and "2 s" in obs.reason
        assert commands_seen(device) == [WINDOWS[0]]
    await asyncio.sleep(0.5)  # the listener closed the held Receive: the worker ended
    assert len(device.log.records) == seen  # no request after the deadline
    assert "delete" not in [r.kind for r in device.log.records]


async def test_a_run_never_waits_for_a_thread_another_run_holds(tmp_path: Path) -> None:
    """A WinRM run holds a thread for its whole session. In the loop's default executor
    (6 threads on two cores; 1 here) a run queued behind a hanging one and timed out
    without sending a request; each run now has a thread of its own."""
    from concurrent.futures import ThreadPoolExecutor

    def hang_first(spec: dict, folder: Path) -> None:
        spec["commands"][WINDOWS[0]]["hang"] = True

    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=1))
    hanging = host_profile_copy("windows-weak", tmp_path, hang_first)
    async with listener(hanging) as stuck, listener("windows-weak") as healthy:
        first = asyncio.create_task(probe(stuck, deadline=3.0, op_timeout=8.0))
        await asyncio.sleep(0.3)  # the first run is in its thread and holds it
        second = await probe(healthy, deadline=3.0)
        assert second.status is ProbeStatus.OK, second.reason
        assert commands_seen(healthy) == list(WINDOWS)
        assert (await first).status is ProbeStatus.TIMEOUT


async def test_a_failure_in_the_run_thread_reaches_the_awaiting_task() -> None:
    from otaudit.probes.winrm.probe import in_own_thread

    def fail() -> None:
        raise ValueError("in the thread")

    with pytest.raises(ValueError, match="in the thread"):
        await in_own_thread(fail)
    assert await in_own_thread(sorted, [3, 1, 2]) == [1, 2, 3]


async def test_a_reply_larger_than_the_bound_fails_the_run() -> None:
    from otaudit.probes.winrm.client import MAX_REPLY

    async def huge(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        size = MAX_REPLY + 4096
        writer.write(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate\r\n"
                     + f"Content-Length: {size}\r\n\r\n".encode())
        for _ in range(size // 65536 + 1):
            writer.write(b"x" * 65536)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(huge, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        obs = await run_probe(WinrmProbe(), ProbeTarget(
            asset=AssetRef(id="x", kind=AssetKind.HMI, zone="z"), host="127.0.0.1", port=port,
            options=WinrmOptions(scheme="http", auth="ntlm")), collector_id="t", site="t",
            deadline=20)
    assert obs.status is ProbeStatus.ERROR
    assert f"a WinRM reply exceeded {MAX_REPLY} bytes" in obs.reason
