"""Windows hosts over OpenSSH for Windows + PowerShell: parsers, simulator, probe."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ssh_helpers import (
    PASSWORD,
    PASSWORD_VAR,
    commands_seen,
    copy_profile,
    credentials,
    only_allowlisted,
    probe,
    simulator,
)

from otaudit.observation import ProbeStatus
from otaudit.probes.base import ParseError
from otaudit.probes.ssh import windows
from otaudit.probes.ssh.allowlist import ALLOWLIST, WINDOWS
from otaudit.probes.ssh.facts import FACTS
from otaudit.probes.ssh.parse.common import Unknown
from otaudit.probes.ssh.probe import effective_personality
from otaudit.thirdparty import asyncssh

PROFILES = Path(__file__).parents[2] / "simulators" / "ssh" / "profiles"
NOW = datetime(2026, 12, 7, tzinfo=UTC)

# `net accounts` as printed on a workstation (layout of the examples in the Windows command
# reference and e.g. renenyffenegger.ch/notes/Windows/dirs/Windows/System32/net_exe/accounts)
NET_ACCOUNTS_DEFAULT = """\
Force user logoff how long after time expires?:       Never
Minimum password age (days):                          0
Maximum password age (days):                          42
Minimum password length:                              0
Length of password history maintained:                None
Lockout threshold:                                    Never
Lockout duration (minutes):                           30
Lockout observation window (minutes):                 30
Computer role:                                        WORKSTATION
The command completed successfully.
"""
# `w32tm /query /status` of a domain member (field layout as check-ntp.net documents it)
W32TM_MEMBER = """\
Leap Indicator: 0(no warning)
Stratum: 4 (secondary reference - syncd by (S)NTP)
Precision: -23 (119.209ns per tick)
Root Delay: 0.0312500s
Root Dispersion: 7.7902343s
ReferenceId: 0xC0A80001 (source IP:  192.168.0.1)
Last Successful Sync Time: 6/19/2026 9:14:02 AM
Source: dc01.corp.example.com
Poll Interval: 10 (1024s)
"""


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_VAR, PASSWORD)


# ---- parsers ----------------------------------------------------------------------------

def test_net_accounts_default_workstation() -> None:
    facts = windows.net_accounts_facts(windows.parse_net_accounts(NET_ACCOUNTS_DEFAULT))
    assert facts["pwpol.min_length"] == 0
    assert (facts["pwpol.max_days"], facts["pwpol.min_days"], facts["pwpol.history"]) == (
        42, 0, 0)
    assert facts["pwpol.lockout_configured"] is False
    assert facts["pwpol.lockout_deny"] == 0
    assert isinstance(facts["pwpol.lockout_unlock_time"], Unknown)


def test_net_accounts_lockout_and_unlimited_age() -> None:
    text = (NET_ACCOUNTS_DEFAULT.replace("42", "Unlimited")
            .replace("Lockout threshold:                                    Never",
                     "Lockout threshold:                                    5")
            .replace("Lockout duration (minutes):                           30",
                     "Lockout duration (minutes):                           Never"))
    facts = windows.net_accounts_facts(windows.parse_net_accounts(text))
    assert facts["pwpol.max_days"] == 99999
    assert (facts["pwpol.lockout_configured"], facts["pwpol.lockout_deny"],
            facts["pwpol.lockout_unlock_time"]) == (True, 5, 0)


def test_net_accounts_other_language_is_a_parse_error() -> None:
    german = "Minimale Kennwortlänge:    0\nSperrschwelle:   Nie\n"
    with pytest.raises(ParseError, match="not English"):
        windows.parse_net_accounts(german)


def test_w32tm_member_and_local_clock() -> None:
    facts = windows.w32tm_facts(W32TM_MEMBER)
    assert facts == {"time.synchronized": True, "time.ntp_sources": ["dc01.corp.example.com"],
                     "time.source": "dc01.corp.example.com"}
    local = W32TM_MEMBER.replace("0(no warning)", "3(not synchronized)").replace(
        "dc01.corp.example.com", "Local CMOS Clock")
    assert windows.w32tm_facts(local)["time.synchronized"] is False
    assert windows.w32tm_facts(local)["time.ntp_sources"] == []
    flags = W32TM_MEMBER.replace("dc01.corp.example.com", "time.windows.com,0x9")
    assert windows.w32tm_facts(flags)["time.ntp_sources"] == ["time.windows.com"]
    stopped = "The following error occurred: The service has not been started. (0x80070426)\n"
    assert windows.w32tm_facts(stopped)["time.synchronized"] is False


def test_auditpol_csv() -> None:
    text = ("Machine Name,Policy Target,Subcategory,Subcategory GUID,Inclusion Setting,"
            "Exclusion Setting\r\n"
            "EWS1,System,Logon,{0CCE9215-69AE-11D9-BED3-505054503030},Success and Failure,\r\n"
            "EWS1,System,Process Creation,{0CCE922B-69AE-11D9-BED3-505054503030},No Auditing,\r\n")
    machine, policy = windows.parse_auditpol(text)
    assert machine == "EWS1"
    assert policy == {"Logon": "Success and Failure", "Process Creation": "No Auditing"}
    gaps = windows.audit_facts((machine, policy))["win.audit_gaps"]
    assert "Process Creation: No Auditing (needs Success)" in gaps
    assert "Account Lockout: absent (needs Failure)" in gaps
    assert not any(g.startswith("Logon:") for g in gaps)
    with pytest.raises(ParseError):
        windows.parse_auditpol(text.replace("Success and Failure", "Sometimes"))


def test_os_windows_11_is_named_by_its_build() -> None:
    reg = {"ProductName": "Windows 10 Pro", "EditionID": "Professional", "DisplayVersion": "23H2",
           "CurrentBuild": "22631", "UBR": 4460, "CurrentMajorVersionNumber": 10,
           "CurrentMinorVersionNumber": 0}
    facts = windows.os_facts(json.dumps(reg))
    assert facts["os.name"] == "Windows 11 Pro"
    assert facts["os.version"] == "10.0.22631.4460"
    assert facts["identity.os"] == "Windows 11 Pro 23H2 (build 22631.4460)"


def test_hotfix_dates_of_both_powershells() -> None:
    text = json.dumps([{"HotFixID": "KB5046613", "InstalledOn": "2024-11-12T00:00:00"},
                       {"HotFixID": "KB4493470", "InstalledOn": "\\/Date(1554768000000)\\/"},
                       {"HotFixID": "KB5011048",
                        "InstalledOn": {"value": "/Date(1710374400000)/", "DisplayHint": 2}},
                       {"HotFixID": "KB2267602", "InstalledOn": None}])
    facts = windows.hotfix_facts(text, NOW)
    assert [f["installed_on"] for f in facts["win.hotfixes"]] == [
        "2024-11-12", "2019-04-09", "2024-03-14", None]
    assert facts["win.last_patch_date"] == "2024-11-12"
    assert facts["win.patch_age_days"] == 755
    assert isinstance(windows.hotfix_facts("", NOW)["win.last_patch_date"], Unknown)


def test_siemens_versions_and_ics_products() -> None:
    assert windows.siemens_version("07.05.02.08") == "V7.5 SP2 Update 8"
    assert windows.siemens_version("07.04.01.00") == "V7.4 SP1"
    entries = [
        {"DisplayName": "SIMATIC WinCC Runtime Professional V17 Upd4", "DisplayVersion": "17.0.4"},
        {"DisplayName": "SIMATIC WinCC", "DisplayVersion": "07.05.02.08",
         "Publisher": "Siemens AG"},
        {"DisplayName": "FactoryTalk View Site Edition Client", "DisplayVersion": "13.00.00",
         "Publisher": "Rockwell Automation, Inc."},
        {"DisplayName": "FactoryTalk View SE Tools", "DisplayVersion": "1.0",
         "Publisher": "Contoso Ltd"},
        {"DisplayName": "Wonderware InTouch 2020", "DisplayVersion": "20.0.000"},
        {"DisplayName": "Proficy iFIX", "DisplayVersion": "6.5"},
        {"DisplayName": "Notepad++", "DisplayVersion": "8.6"}]
    facts = windows.software_facts(json.dumps(entries))
    got = [(p["vendor"], p["product"], p["version"]) for p in facts["software.ics_products"]]
    assert got == [
        ("Siemens", "SIMATIC WinCC Runtime Professional", "V17 Update 4"),
        ("Siemens", "SIMATIC WinCC", "V7.5 SP2 Update 8"),
        ("Rockwell Automation", "FactoryTalk View Site Edition", "13.00.00"),
        ("AVEVA", "InTouch HMI", "20.0.000"),
        ("GE Digital", "iFIX", "6.5")]
    assert len(facts["software.packages"]) == 7


def test_rdp_firewall_usb_and_smb() -> None:
    assert windows.rdp_facts('{"fDenyTSConnections":1}', '{"UserAuthentication":0}') == {
        "win.rdp_enabled": False, "win.rdp_nla": False}
    fw = windows.firewall_facts('[{"Name":"Domain","Enabled":1,"DefaultInboundAction":4},'
                                '{"Name":"Public","Enabled":2,"DefaultInboundAction":0}]')
    assert isinstance(fw["win.firewall_enabled"], Unknown)  # NotConfigured is not "on"
    assert windows.usb_storage_facts('{"Start":4}') == {"win.usb_storage_enabled": False}
    with pytest.raises(ParseError):
        windows.usb_storage_facts('{"Start":9}')
    with pytest.raises(ParseError):
        windows.smb_facts('{"EnableSMB1Protocol":"maybe"}')


# ---- properties: any text -> facts or ParseError ---------------------------------------------

LINES = sorted({line for f in PROFILES.glob("windows-*/outputs/*")
                for line in f.read_text(encoding="utf-8").splitlines()}
               | set(NET_ACCOUNTS_DEFAULT.splitlines()) | set(W32TM_MEMBER.splitlines()))
FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.text(max_size=20),
              st.sampled_from(["\\/Date(1554768000000)\\/", "2024-11-12T00:00:00", "07.04.01.00",
                               "SIMATIC WinCC V7.4 SP1", "KB5046613", "Never"])),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from([
                                "ProductName", "CurrentBuild", "UBR", "HotFixID", "InstalledOn",
                                "DisplayName", "DisplayVersion", "Publisher", "Name", "Enabled",
                                "Start", "fDenyTSConnections", "UserAuthentication", "Status",
                                "AntivirusSignatureAge", "AMServiceEnabled", "AntivirusEnabled",
                                "RealTimeProtectionEnabled", "EnableSMB1Protocol", "1",
                                "CurrentMajorVersionNumber", "CurrentMinorVersionNumber",
                                "ObjectClass", "PrincipalSource", "DefaultInboundAction"]),
                                inner, max_size=8)), max_leaves=20)
any_text = st.one_of(
    st.text(max_size=300),
    json_value.map(json.dumps),
    st.lists(st.one_of(st.sampled_from(LINES), st.text(max_size=30),
                       st.sampled_from(LINES).map(lambda s: s[: len(s) // 2])),
             max_size=40).map("\r\n".join))
PIPELINES = {
    "os": windows.os_facts,
    "hotfix": lambda t: windows.hotfix_facts(t, NOW),
    "accounts": lambda t: windows.net_accounts_facts(windows.parse_net_accounts(t)),
    "audit": lambda t: windows.audit_facts(windows.parse_auditpol(t)),
    "defender": windows.defender_facts,
    "firewall": windows.firewall_facts,
    "smb": windows.smb_facts,
    "rdp": lambda t: windows.rdp_facts(t, t),
    "admins": windows.local_admin_facts,
    "usb": windows.usb_storage_facts,
    "time": windows.w32tm_facts,
    "services": windows.service_facts,
    "wef": windows.forwarding_facts,
    "software": windows.software_facts,
}


@pytest.mark.parametrize("name", sorted(PIPELINES))
@FUZZ
@given(text=any_text)
def test_any_text_gives_facts_or_parse_error(name: str, text: str) -> None:
    try:
        result = PIPELINES[name](text)
    except ParseError:
        return
    assert isinstance(result, dict)
    json.dumps({k: v for k, v in result.items() if not isinstance(v, Unknown)})


def test_every_command_has_a_pipeline_and_ends_in_json_or_is_a_known_tool() -> None:
    assert set(WINDOWS) - {"rdp_tcp"} == set(PIPELINES)
    for command in WINDOWS.values():
        assert command.endswith("| ConvertTo-Json -Compress") or command in (
            "net accounts", "auditpol /get /category:* /r", "w32tm /query /status")
        assert not any(verb in command for verb in ("Set-", "Remove-", "New-", "Invoke-",
                                                    "/set", ">", ";", "&&"))


# ---- simulator and probe ----------------------------------------------------------------------

async def test_weak_station(tmp_path: Path) -> None:
    async with simulator("windows-weak") as device:
        obs = await probe(device.port, tmp_path / "kh", **credentials("windows-weak"))
    assert obs.status is ProbeStatus.OK, obs.reason
    f = obs.fact
    assert f("ssh.banner") == "SSH-2.0-OpenSSH_for_Windows_7.7"
    assert (f("os.family"), f("os.name"), f("os.build"), f("os.edition")) == (
        "windows", "Windows 10 Enterprise 2016 LTSB", "14393.2906", "EnterpriseS")
    assert f("identity.os") == "Windows 10 Enterprise 2016 LTSB 1607 (build 14393.2906)"
    assert f("identity.name") == "HMI-LINE3"
    assert f("win.last_patch_date") == "2019-04-09"
    assert (f("pwpol.min_length"), f("pwpol.max_days"), f("pwpol.lockout_configured")) == (
        0, 99999, False)
    assert f("pwpol.lockout_deny") == 0
    assert "lockout threshold Never" in obs.unknown["pwpol.lockout_unlock_time"]
    assert (f("win.smb1_enabled"), f("win.rdp_enabled"), f("win.rdp_nla")) == (True, True, False)
    assert (f("av.enabled"), f("av.realtime"), f("av.signature_age_days")) == (True, False, 412)
    assert f("win.firewall_enabled") is False
    assert f("win.usb_storage_enabled") is True
    assert (f("time.synchronized"), f("time.source")) == (False, "Local CMOS Clock")
    assert (f("logging.sysmon_installed"), f("logging.event_forwarding")) == (False, False)
    assert f("win.local_admin_count") == 4
    assert "Process Creation: No Auditing (needs Success)" in f("win.audit_gaps")
    assert f("software.ics_products") == [
        {"vendor": "Siemens", "product": "SIMATIC WinCC", "version": "V7.4 SP1",
         "display_name": "SIMATIC WinCC V7.4 SP1"}]
    assert obs.unknown["sshd.permit_root_login"] == "not applicable to personality windows"
    assert set(obs.facts) | set(obs.unknown) == set(FACTS)
    assert only_allowlisted(device, "windows")
    assert commands_seen(device) == list(ALLOWLIST["windows"])  # each once, in order
    assert device.log.max_concurrent == 1


async def test_hardened_station(tmp_path: Path) -> None:
    async with simulator("windows-hardened") as device:
        obs = await probe(device.port, tmp_path / "kh", **credentials("windows-hardened"))
    assert obs.status is ProbeStatus.OK, obs.reason
    f = obs.fact
    assert f("os.name") == "Windows 10 IoT Enterprise LTSC 2021"
    assert f("os.version") == "10.0.19044.5131"
    assert (f("pwpol.min_length"), f("pwpol.lockout_deny"), f("pwpol.lockout_unlock_time"),
            f("pwpol.history")) == (14, 5, 900, 24)
    assert f("win.audit_gaps") == []
    assert (f("win.smb1_enabled"), f("win.rdp_nla"), f("win.firewall_enabled"),
            f("win.usb_storage_enabled")) == (False, True, True, False)
    assert (f("time.synchronized"), f("time.ntp_sources")) == (True, ["ntp1.plant.local"])
    assert (f("logging.sysmon_running"), f("logging.event_forwarding")) == (True, True)
    assert [p["version"] for p in f("software.ics_products")] == ["V7.5 SP2 Update 16"]
    assert only_allowlisted(device, "windows")


async def test_banner_turns_a_linux_endpoint_into_windows(tmp_path: Path) -> None:
    assert effective_personality("linux", "SSH-2.0-OpenSSH_for_Windows_8.1") == "windows"
    assert effective_personality("cisco_ios", "SSH-2.0-OpenSSH_for_Windows_8.1") == "cisco_ios"
    assert effective_personality("linux", "SSH-2.0-OpenSSH_9.2p1") == "linux"
    async with simulator("windows-weak") as device:
        obs = await probe(device.port, tmp_path / "kh", **credentials(
            "windows-weak", personality="linux"))
    assert obs.fact("os.family") == "windows"
    assert not any(c.startswith("cat ") for c in commands_seen(device))
    assert only_allowlisted(device, "windows")


async def test_simulator_rejects_anything_else_and_records_it() -> None:
    async with simulator("windows-weak") as device, asyncssh.connect(
            "127.0.0.1", device.port, username="auditor", password=PASSWORD,
            known_hosts=None) as conn:
        bad = await conn.run("Set-MpPreference -DisableRealtimeMonitoring $true")
        near = await conn.run("net accounts /domain")
    assert bad.exit_status == 1 and "is not recognized" in bad.stderr
    assert near.exit_status == 1
    execs = [r.detail for r in device.log.records if r.kind == "exec"]
    assert [(e["command"], e["known"]) for e in execs] == [
        ("Set-MpPreference -DisableRealtimeMonitoring $true", False),
        ("net accounts /domain", False)]


async def test_a_missing_cmdlet_makes_only_its_facts_unknown(tmp_path: Path) -> None:
    def drop_defender(spec: dict) -> None:
        del spec["commands"][WINDOWS["defender"]]

    folder = copy_profile("windows-weak", tmp_path, drop_defender)
    async with simulator(folder) as device:
        obs = await probe(device.port, tmp_path / "kh", **credentials("windows-weak"))
    assert obs.status is ProbeStatus.OK, obs.reason
    assert "not found on the host" in obs.unknown["av.enabled"]
    assert "not found on the host" in obs.unknown["av.signature_age_days"]
    assert obs.fact("win.smb1_enabled") is True


def test_discovery_drafts_a_windows_banner_as_windows() -> None:
    from otaudit.collector.draft import SSH_PERSONALITIES

    def first(software: str) -> str:
        return next(p for rx, p, _, _ in SSH_PERSONALITIES if rx.search(software))

    assert first("OpenSSH_for_Windows_8.1") == "windows"
    assert first("OpenSSH_9.2p1 Debian-2+deb12u2") == "linux"
