"""Windows parsers at their boundaries: the build that is Windows 11, the signature age that
means none loaded, service start types, lockout thresholds, leap indicator 3, local
midnights either side of UTC, auditpol columns (issue 23: windows.py mutation run)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from otaudit.probes.base import ParseError
from otaudit.probes.ssh import windows
from otaudit.probes.ssh.parse.common import Unknown

NOW = datetime(2026, 12, 7, tzinfo=UTC)


def reg(**values: object) -> str:
    return json.dumps({"ProductName": "Windows 10 Pro", "CurrentBuild": "19045",
                       "CurrentMajorVersionNumber": 10, "CurrentMinorVersionNumber": 0,
                       **values})


@pytest.mark.parametrize(("build", "name"), [
    ("21999", "Windows 10 Pro"), ("22000", "Windows 11 Pro"), ("22631", "Windows 11 Pro")])
def test_windows_11_from_build_22000(build: str, name: str) -> None:
    facts = windows.os_facts(reg(CurrentBuild=build, UBR=1, EditionID="Professional"))
    assert facts["os.name"] == name
    assert facts["os.build"] == f"{build}.1"
    assert facts["os.version"] == f"10.0.{build}.1"
    assert facts["os.edition"] == "Professional"


def test_server_name_is_not_renamed_and_version_falls_back() -> None:
    text = json.dumps({"ProductName": "Windows Server 2022 Standard", "CurrentBuild": "20348",
                       "CurrentVersion": "6.3", "DisplayVersion": "21H2"})
    facts = windows.os_facts(text)
    assert facts["os.name"] == "Windows Server 2022 Standard"
    assert (facts["os.build"], facts["os.version"]) == ("20348", "6.3.20348")
    assert facts["identity.os"] == "Windows Server 2022 Standard 21H2 (build 20348)"
    assert isinstance(facts["os.edition"], Unknown)
    only_major = windows.os_facts(reg(CurrentMinorVersionNumber=None, CurrentVersion="6.3"))
    assert only_major["os.version"] == "6.3.19045"


def mp(age: int) -> str:
    return json.dumps({"AMServiceEnabled": True, "AntivirusEnabled": True,
                       "RealTimeProtectionEnabled": False, "AntivirusSignatureAge": age})


@pytest.mark.parametrize(("age", "known"), [(0, True), (60000, True), (60001, False),
                                            (65535, False)])
def test_signature_age_beyond_60000_means_none_loaded(age: int, known: bool) -> None:
    facts = windows.defender_facts(mp(age))
    assert facts["av.enabled"] is True and facts["av.realtime"] is False
    assert (facts["av.signature_age_days"] == age) is known
    assert isinstance(facts["av.signature_age_days"], Unknown) is not known


def test_antivirus_needs_both_service_and_engine() -> None:
    for service, engine in ((True, False), (False, True), (False, False)):
        text = json.dumps({"AMServiceEnabled": service, "AntivirusEnabled": engine,
                           "RealTimeProtectionEnabled": True, "AntivirusSignatureAge": 1})
        assert windows.defender_facts(text)["av.enabled"] is False


@pytest.mark.parametrize(("start", "enabled"), [(0, True), (3, True), (4, False)])
def test_usb_storage_start_types(start: int, enabled: bool) -> None:
    text = json.dumps({"Start": start})
    assert windows.usb_storage_facts(text) == {"win.usb_storage_enabled": enabled}


@pytest.mark.parametrize("start", [5, -1])
def test_usb_storage_start_outside_the_types(start: int) -> None:
    with pytest.raises(ParseError, match=f"USBSTOR Start {start} is not"):
        windows.usb_storage_facts(json.dumps({"Start": start}))


def accounts(threshold: str, duration: str | None = "30") -> dict:
    values = {"min_length": "8", "max_age": "Unlimited", "threshold": threshold,
              "min_age": "1", "history": "24"}
    if duration is not None:
        values["duration"] = duration
    return windows.net_accounts_facts(values)


def test_lockout_threshold_one_is_configured() -> None:
    facts = accounts("1")
    assert facts["pwpol.lockout_configured"] is True and facts["pwpol.lockout_deny"] == 1
    assert facts["pwpol.lockout_unlock_time"] == 1800
    assert (facts["pwpol.min_length"], facts["pwpol.max_days"], facts["pwpol.min_days"],
            facts["pwpol.history"]) == (8, 99999, 1, 24)


def test_lockout_threshold_never_or_zero() -> None:
    for value in ("Never", "0"):
        facts = accounts(value)
        assert facts["pwpol.lockout_configured"] is False and facts["pwpol.lockout_deny"] == 0
        assert isinstance(facts["pwpol.lockout_unlock_time"], Unknown)


def test_lockout_duration_never_and_absent() -> None:
    assert accounts("5", "Never")["pwpol.lockout_unlock_time"] == 0
    assert isinstance(accounts("5", None)["pwpol.lockout_unlock_time"], Unknown)


def test_counts_refuse_never_where_a_number_belongs() -> None:
    with pytest.raises(ParseError, match="Minimum password length: 'Never' where a number"):
        windows.net_accounts_facts({"min_length": "Never", "max_age": "42", "threshold": "0"})
    with pytest.raises(ParseError, match="is not a number"):
        windows.net_accounts_facts({"min_length": "8", "max_age": "42", "threshold": "-1"})


@pytest.mark.parametrize(("raw", "day"), [
    ("\\/Date(1326441600000)\\/", date(2012, 1, 13)),   # UTC-8 host's midnight (08:00 UTC)
    ("\\/Date(1326405600000)\\/", date(2012, 1, 13)),   # UTC+2 host's midnight (22:00 UTC)
    ("\\/Date(1326420000000)\\/", date(2012, 1, 13)),   # 02:00 UTC: 12 h before 14:00 UTC
    ("2012-01-13T00:00:00+02:00", date(2012, 1, 13)),   # ISO: read as written
    ("2012-01-13T23:00:00", date(2012, 1, 13)),
])
def test_local_date_of_a_midnight(raw: str, day: date) -> None:
    assert windows.ps_local_date(raw) == day
    assert windows.ps_local_date({"value": raw, "DateTime": "Friday, January 13, 2012"}) == day


def test_dates_before_1970_and_null() -> None:
    assert windows.parse_ps_date("/Date(-86400000)/") == datetime(1969, 12, 31, tzinfo=UTC)
    assert windows.ps_local_date(None) is None
    with pytest.raises(ParseError, match="date: '5' is not a date"):
        windows.parse_ps_date(5)


def test_hotfix_age_is_never_negative_and_last_date_wins() -> None:
    text = json.dumps([{"HotFixID": "KB1", "InstalledOn": "2026-12-01T00:00:00"},
                       {"HotFixID": "KB2", "InstalledOn": "2026-12-09T00:00:00"},
                       {"HotFixID": "KB3", "InstalledOn": None}])
    facts = windows.hotfix_facts(text, NOW)
    assert facts["win.last_patch_date"] == "2026-12-09" and facts["win.patch_age_days"] == 0
    assert facts["win.hotfixes"][2] == {"id": "KB3", "installed_on": None}
    older = json.dumps([{"HotFixID": "KB1", "InstalledOn": "2026-12-01T00:00:00"}])
    assert windows.hotfix_facts(older, NOW)["win.patch_age_days"] == 6


def test_hotfixes_none_or_undated() -> None:
    empty = windows.hotfix_facts("", NOW)
    assert empty["win.hotfixes"] == [] and isinstance(empty["win.patch_age_days"], Unknown)
    undated = windows.hotfix_facts(json.dumps({"HotFixID": "File 1", "InstalledOn": None}), NOW)
    assert undated["win.hotfixes"] == [{"id": "File 1", "installed_on": None}]
    assert isinstance(undated["win.last_patch_date"], Unknown)


AUDIT_HEADER = ("Machine Name,Policy Target,Subcategory,Subcategory GUID,Inclusion Setting,"
                "Exclusion Setting\n")


def test_auditpol_rows_need_five_columns() -> None:
    five = AUDIT_HEADER + "HOST1,System,Logon,{0CCE9215-69AE-11D9-BED3-505054503030},Success\n"
    assert windows.parse_auditpol(five) == ("HOST1", {"Logon": "Success"})
    four = AUDIT_HEADER + "HOST1,System,Logon,{0CCE9215-69AE-11D9-BED3-505054503030}\n"
    with pytest.raises(ParseError, match="auditpol line 2: 4 columns, expected 6"):
        windows.parse_auditpol(four)


def test_auditpol_blank_rows_and_first_machine_name() -> None:
    text = (AUDIT_HEADER + ",System,Logon,{G1},Success and Failure,\n\n,,,,\n"
            "HOST2,System,Account Lockout,{G2},Failure,\n"
            "HOST3,System,Process Creation,{G3},No Auditing,\n")
    machine, policy = windows.parse_auditpol(text)
    assert machine == "HOST2"
    assert policy == {"Logon": "Success and Failure", "Account Lockout": "Failure",
                      "Process Creation": "No Auditing"}
    facts = windows.audit_facts((machine, policy))
    assert "Logon: Success and Failure (needs Success and Failure)" not in facts["win.audit_gaps"]
    assert "Process Creation: No Auditing (needs Success)" in facts["win.audit_gaps"]
    assert "Account Lockout: Failure (needs Failure)" not in facts["win.audit_gaps"]
    assert "System Integrity: absent (needs Success and Failure)" in facts["win.audit_gaps"]
    assert isinstance(windows.audit_facts((None, policy))["identity.name"], Unknown)


@pytest.mark.parametrize(("setting", "needed", "covered"), [
    ("Success", "Success and Failure", False), ("Failure", "Success", False),
    ("Success and Failure", "Failure", True), ("No Auditing", "Success", False),
    ("Success", "Success", True)])
def test_audit_setting_covers(setting: str, needed: str, covered: bool) -> None:
    assert windows._covers(setting, needed) is covered


@pytest.mark.parametrize(("leap", "synced"), [("0(no warning)", True), ("3(not synchronized)",
                                                                        False),
                                              ("2(last minute has 59 seconds)", True)])
def test_leap_indicator_three_means_not_synchronised(leap: str, synced: bool) -> None:
    text = f"Leap Indicator: {leap}\nSource: time.windows.com,0x9\n"
    facts = windows.w32tm_facts(text)
    assert facts["time.synchronized"] is synced
    assert facts["time.source"] == "time.windows.com"
    assert facts["time.ntp_sources"] == ["time.windows.com"]


def test_vm_ic_source() -> None:
    base = "Source: VM IC Time Synchronization Provider\n"
    assert windows.w32tm_facts("Leap Indicator: 3(not synchronized)\n" + base)[
        "time.synchronized"] is False
    facts = windows.w32tm_facts("Leap Indicator: 0(no warning)\n" + base)
    assert isinstance(facts["time.synchronized"], Unknown) and facts["time.ntp_sources"] == []


def test_local_clock_and_empty_source() -> None:
    for source in ("Local CMOS Clock", "Free-running System Clock", ""):
        facts = windows.w32tm_facts(f"Leap Indicator: 0(no warning)\nSource: {source}\n")
        assert facts["time.synchronized"] is False and facts["time.ntp_sources"] == []
        assert facts["time.source"] == (source or "none")


def test_first_of_repeated_w32tm_labels_counts() -> None:
    text = "Leap Indicator: 0(no warning)\nSource: ntp1\nSource: ntp2\nLeap Indicator: 3\n"
    assert windows.w32tm_facts(text)["time.ntp_sources"] == ["ntp1"]


def test_firewall_profiles() -> None:
    text = json.dumps([{"Name": "Domain", "Enabled": 1, "DefaultInboundAction": 4},
                       {"Name": "Private", "Enabled": True, "DefaultInboundAction": 2},
                       {"Name": "Public", "Enabled": 0, "DefaultInboundAction": 0}])
    facts = windows.firewall_facts(text)
    assert [(p["enabled"], p["default_inbound"]) for p in facts["win.firewall_profiles"]] == [
        (True, "Block"), (True, "Allow"), (False, "NotConfigured")]
    assert facts["win.firewall_enabled"] is False
    on = json.dumps([{"Name": "Domain", "Enabled": 1, "DefaultInboundAction": 9}])
    assert windows.firewall_facts(on)["win.firewall_enabled"] is True
    assert windows.firewall_facts(on)["win.firewall_profiles"][0]["default_inbound"] == "9"
    unset = json.dumps([{"Name": "Domain", "Enabled": 2}, {"Name": "Public", "Enabled": 0}])
    facts = windows.firewall_facts(unset)
    assert isinstance(facts["win.firewall_enabled"], Unknown)
    assert facts["win.firewall_profiles"][0]["default_inbound"] is None


@pytest.mark.parametrize(("deny", "nla", "want"), [
    (0, 1, (True, True)), (1, 0, (False, False)), (0, 2, (True, False))])
def test_rdp_flags(deny: int, nla: int, want: tuple) -> None:
    facts = windows.rdp_facts(json.dumps({"fDenyTSConnections": deny}),
                              json.dumps({"UserAuthentication": nla}))
    assert (facts["win.rdp_enabled"], facts["win.rdp_nla"]) == want


def test_principal_sources_and_services() -> None:
    text = json.dumps([{"Name": "H\\Administrator", "ObjectClass": "User", "PrincipalSource": 1},
                       {"Name": "CORP\\Domain Admins", "ObjectClass": "Group",
                        "PrincipalSource": 2},
                       {"Name": "A", "PrincipalSource": 0}, {"Name": "B", "PrincipalSource": 3},
                       {"Name": "C", "PrincipalSource": 4},
                       {"Name": "X", "PrincipalSource": 7}, {"Name": "Y"}])
    facts = windows.local_admin_facts(text)
    assert [m["source"] for m in facts["win.local_admins"]] == [
        "Local", "ActiveDirectory", "Unknown", "AzureAD", "MicrosoftAccount", "7", None]
    assert facts["win.local_admin_count"] == 7
    services = json.dumps([{"Name": "Sysmon64", "Status": 1}, {"Name": "WinRM", "Status": 4}])
    assert windows.service_facts(services) == {"logging.sysmon_installed": True,
                                               "logging.sysmon_running": False}
    running = json.dumps([{"Name": "sysmon", "Status": 4}])
    assert windows.service_facts(running)["logging.sysmon_running"] is True


def test_event_forwarding_managers() -> None:
    assert windows.forwarding_facts(None) == {"logging.event_forwarding": False,
                                              "logging.remote_enabled": False}
    text = json.dumps({"1": "Server=http://wec:5985/wsman/SubscriptionManager/WEC",
                       "PSPath": "x"})
    assert windows.forwarding_facts(text)["logging.event_forwarding"] is True
    assert windows.forwarding_facts(json.dumps({"1": "", "PSPath": "x"}))[
        "logging.event_forwarding"] is False


@pytest.mark.parametrize(("raw", "text"), [
    ("07.04.01.00", "V7.4 SP1"), ("07.05.02.08", "V7.5 SP2 Update 8"), ("16.0", "V16.0"),
    ("17.00.00.00", "V17.0"), ("15.01.00.03", "V15.1 Update 3"), ("1.2.3.4.5", None)])
def test_siemens_versions(raw: str, text: str | None) -> None:
    assert windows.siemens_version(raw) == text


def test_iso_dates_keep_their_offset_and_naive_ones_are_utc() -> None:
    assert windows.parse_ps_date("2012-01-13T00:00:00+02:00") == datetime(
        2012, 1, 12, 22, 0, tzinfo=UTC)
    assert windows.parse_ps_date("2012-01-13T00:00:00") == datetime(2012, 1, 13, tzinfo=UTC)
    assert windows.parse_ps_date("2012-01-13T00:00:00").tzinfo is UTC


def test_bad_dates_and_leap_indicators_are_quoted_briefly() -> None:
    with pytest.raises(ParseError, match=rf"^InstalledOn: '{'1' * 40}' is not a date$"):
        windows.parse_ps_date(int("1" * 60), "InstalledOn")
    with pytest.raises(ParseError, match=rf"^InstalledOn: '{'x' * 40}' is not a date$"):
        windows.parse_ps_date("x" * 60, "InstalledOn")
    leap = "unreadable leap indicator text, longer than thirty"
    with pytest.raises(ParseError, match=rf"^Leap Indicator '{leap[:30]}'$"):
        windows.w32tm_facts(f"Leap Indicator: {leap}\nSource: ntp1\n")


def test_a_bad_count_is_quoted_to_thirty_characters() -> None:
    value = "eight characters at the very least, please"
    with pytest.raises(ParseError, match=rf"^Minimum password length: '{value[:30]}' is not"):
        windows.net_accounts_facts({"min_length": value, "max_age": "42", "threshold": "0"})
