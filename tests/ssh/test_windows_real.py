"""The Windows parsers on real command outputs of real Windows hosts.

Every file under tests/fixtures/real/windows/ is an output a real host printed (origin and
licence in tests/fixtures/README.md); each test states the facts a human reads in it.
Localised outputs the parsers cannot read must fail with a reason, never give a wrong fact.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from otaudit.probes.base import ParseError
from otaudit.probes.ssh import windows
from otaudit.probes.ssh.parse.common import Unknown

REAL = Path(__file__).parents[1] / "fixtures" / "real" / "windows"


def real(name: str) -> str:
    return (REAL / name).read_text(encoding="utf-8")


def test_every_real_file_is_used_by_a_test() -> None:
    used = ({f"w32tm_lf_{n}.txt" for n in W32TM} | {f"w32tm_lf_{n}.txt" for n in W32TM_ERRORS}
            | {"net_accounts_msdocs_dc_primary.txt", "auditpol_inspec_user-account-management.csv",
               "software_inspec_chef-client.json", "ps51_convertto-json_get-date_msdocs.json"})
    assert {p.name for p in REAL.iterdir()} == used


# ---- w32tm /query /status -------------------------------------------------------------------

# file → (synchronized, ntp sources, source) as the output reads
W32TM: dict[str, tuple[object, list[str], str]] = {
    "stratum-4-synced-time-windows": (True, ["time.windows.com"], "time.windows.com"),
    "stratum-2-nist": (True, ["time-c.nist.gov"], "time-c.nist.gov"),
    "last-sync-too-old": (True, ["DCName.acmecorp.com"], "DCName.acmecorp.com"),
    "stratum-5-dc-authenticated": (True, ["DCNAME.company.com"], "DCNAME.company.com"),
    # leap indicator 3 wins over a named source: configured, never synchronised
    "unsynced-time-windows": (False, ["time.windows.com"], "time.windows.com"),
    # old Windows printed LI 3 as "3(last minute has 61 seconds)": the number decides
    "stale-time-data": (False, ["time.windows.com"], "time.windows.com"),
    "unsynced-local-cmos": (False, [], "Local CMOS Clock"),
    "unsynced-local-cmos-poll10": (False, [], "Local CMOS Clock"),
    # Hyper-V guests follow the host clock: synchronised to what, the guest cannot tell
    "stratum-1-vm-ic": (Unknown, [], "VM IC Time Synchronization Provider"),
    "stratum-2-vm-ic": (Unknown, [], "VM IC Time Synchronization Provider"),
    # German (de-DE): "Sprungindikator" / "Quelle"; the source names stay English
    "de-stratum-5-synced": (True, ["time.windows.com"], "time.windows.com"),
    "de-last-sync-error-wrapped": (True, ["time.windows.com"], "time.windows.com"),
    "de-unsynced-local-cmos": (False, [], "Local CMOS Clock"),
}


@pytest.mark.parametrize("name", sorted(W32TM))
def test_w32tm_real(name: str) -> None:
    synchronized, sources, source = W32TM[name]
    facts = windows.w32tm_facts(real(f"w32tm_lf_{name}.txt"))
    assert facts["time.ntp_sources"] == sources
    assert facts["time.source"] == source
    if synchronized is Unknown:
        assert isinstance(facts["time.synchronized"], Unknown)
        assert "Hyper-V host" in facts["time.synchronized"].reason
    else:
        assert facts["time.synchronized"] is synchronized


W32TM_ERRORS = ("de-service-not-running", "de-access-denied")


def test_w32tm_real_german_errors() -> None:
    stopped = windows.w32tm_facts(real("w32tm_lf_de-service-not-running.txt"))
    assert stopped["time.synchronized"] is False and stopped["time.ntp_sources"] == []
    assert "not running" in stopped["time.source"].reason
    with pytest.raises(ParseError, match=r"w32tm failed: .*Zugriff verweigert \(0x80070005\)"):
        windows.w32tm_facts(real("w32tm_lf_de-access-denied.txt"))


def test_w32tm_unknown_language_names_the_languages_it_reads() -> None:
    french = real("w32tm_lf_de-stratum-5-synced.txt").replace(
        "Sprungindikator", "Indicateur de saut").replace("Quelle", "Source ")
    with pytest.raises(ParseError, match="no known language"):
        windows.w32tm_facts(french)


# ---- net accounts -------------------------------------------------------------------------

def test_net_accounts_real_domain_controller() -> None:
    values = windows.parse_net_accounts(real("net_accounts_msdocs_dc_primary.txt"))
    assert values["role"] == "PRIMARY" and values["forcelogoff"] == "Never"
    facts = windows.net_accounts_facts(values)
    assert {k: v for k, v in facts.items() if not isinstance(v, Unknown)} == {
        "pwpol.min_length": 7, "pwpol.max_days": 42, "pwpol.min_days": 0,
        "pwpol.history": 24, "pwpol.lockout_configured": False, "pwpol.lockout_deny": 0}
    # "Lockout threshold: Never": the 30-minute duration printed below it never applies
    assert "Never" in facts["pwpol.lockout_unlock_time"].reason


def test_net_accounts_real_with_crlf_line_ends() -> None:
    """cmd.exe writes CRLF; the document keeps LF. Both read the same."""
    text = real("net_accounts_msdocs_dc_primary.txt")
    assert windows.parse_net_accounts(text.replace("\n", "\r\n")) == \
        windows.parse_net_accounts(text)


# ---- auditpol /r ---------------------------------------------------------------------------

def test_auditpol_real_single_subcategory_report() -> None:
    machine, policy = windows.parse_auditpol(real("auditpol_inspec_user-account-management.csv"))
    assert (machine, policy) == ("WIN-K0AKLED332V", {"User Account Management": "Success"})
    facts = windows.audit_facts((machine, policy))
    assert facts["identity.name"] == "WIN-K0AKLED332V"
    # audited on success only: the failure half SR 2.8 needs is a gap
    assert "User Account Management: Success (needs Success and Failure)" in facts[
        "win.audit_gaps"]
    assert "Logon: absent (needs Success and Failure)" in facts["win.audit_gaps"]


# ---- installed software (Uninstall keys) ------------------------------------------------------

def test_software_real_powershell51_json() -> None:
    facts = windows.software_facts(real("software_inspec_chef-client.json"))
    # the trailing blank Windows keeps in DisplayName is not part of the name
    assert facts["software.packages"] == [{"name": "Chef Client v12.12.15",
                                           "version": "12.12.15.1"}]
    assert facts["software.ics_products"] == []


# ---- dates as Windows PowerShell 5.1 writes them (Get-HotFix InstalledOn) ---------------------

def test_ps51_date_is_local_midnight_as_utc_milliseconds() -> None:
    """Microsoft's own output: `Get-Date | Select-Object * | ConvertTo-Json` on a UTC-8 host.
    Its Date property (local midnight of Friday 13 January 2012) is 08:00 UTC: the offset is
    lost, the calendar date is that of the nearest UTC midnight."""
    now = json.loads(real("ps51_convertto-json_get-date_msdocs.json"))
    local = date(now["Year"], now["Month"], now["Day"])
    assert local == date(2012, 1, 13) and now["DateTime"].startswith("Friday, January 13, 2012")
    utc = windows.parse_ps_date(now["Date"])
    assert utc == datetime(2012, 1, 13, 8, tzinfo=UTC)
    assert windows.ps_local_date(now["Date"]) == local


@pytest.mark.parametrize("offset_hours", [-11, -8, -5, 0, 1, 2, 9, 12])
def test_hotfix_install_date_is_the_hosts_calendar_date(offset_hours: int) -> None:
    """The same serialisation on hosts east of UTC (a plant in Germany: UTC+1/+2) puts local
    midnight on the UTC day before; the install date must still be the local one."""
    local_midnight = datetime(2024, 1, 10, tzinfo=UTC) - timedelta(hours=offset_hours)
    ms = int(local_midnight.timestamp() * 1000)
    for installed_on in (f"\\/Date({ms})\\/", {"value": f"/Date({ms})/", "DisplayHint": 2}):
        text = json.dumps([{"HotFixID": "KB5034441", "InstalledOn": installed_on}])
        facts = windows.hotfix_facts(text, datetime(2024, 1, 20, tzinfo=UTC))
        assert facts["win.hotfixes"] == [{"id": "KB5034441", "installed_on": "2024-01-10"}]
        assert facts["win.patch_age_days"] == 10


def test_hotfix_iso_dates_of_powershell7_keep_their_own_date() -> None:
    text = json.dumps([{"HotFixID": "KB1", "InstalledOn": "2024-01-10T00:00:00"},
                       {"HotFixID": "KB2", "InstalledOn": "2024-01-10T00:00:00+02:00"}])
    facts = windows.hotfix_facts(text, datetime(2024, 1, 20, tzinfo=UTC))
    assert [f["installed_on"] for f in facts["win.hotfixes"]] == ["2024-01-10", "2024-01-10"]
