"""Pure parsers of the Windows host outputs (OpenSSH for Windows, PowerShell as the shell).

Every function takes the text one allowlisted command printed and returns fact values, or
raises ``ParseError``; no other exception escapes (``@parser`` turns a slip into one).
PowerShell commands end in ``ConvertTo-Json -Compress``: one object prints as a JSON
object, several as an array, none as nothing. Windows PowerShell 5.1 writes a DateTime as
``"\\/Date(ms)\\/"`` (or as an object with ``value`` and ``DateTime``), PowerShell 7 as ISO
text; enums as their numbers. The three text outputs follow the formats documented by
Microsoft and shown in public examples (``net accounts``: Windows Server command reference
and e.g. renenyffenegger.ch; ``w32tm /query /status``: MS-W32T field list and e.g.
check-ntp.net; ``auditpol /get /category:* /r``: the report (CSV) format of auditpol /r),
and are checked against real outputs of real hosts in tests/fixtures/real/windows/
(English and German w32tm, net accounts, auditpol /r, PowerShell 5.1 JSON).
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from otaudit.probes.base import ParseError
from otaudit.probes.ssh.parse.common import Unknown, parser

MICROSOFT = "Microsoft"
_DATE_MS = re.compile(r"^/Date\((-?\d{1,15})(?:[+-]\d{4})?\)/$")


# ---- JSON of ConvertTo-Json -Compress ----------------------------------------------------

@parser
def parse_json(text: str, what: str = "output") -> list[dict[str, Any]]:
    """The objects a ``ConvertTo-Json -Compress`` printed (none, one, or an array)."""
    text = text.strip().lstrip("\ufeff")
    if not text:
        return []
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ParseError(f"{what} is not JSON ({type(exc).__name__})") from None
    items = data if isinstance(data, list) else [data]
    if not all(isinstance(item, dict) for item in items):
        raise ParseError(f"{what}: expected JSON objects")
    return items


def _one(text: str, what: str) -> dict[str, Any]:
    items = parse_json(text, what)
    if len(items) != 1:
        raise ParseError(f"{what}: expected one object, got {len(items)}")
    return items[0]


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or value is None:
        raise ParseError(f"{what}: {value!r} is not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,12}", value.strip()):
        return int(value.strip())
    raise ParseError(f"{what}: {str(value)[:40]!r} is not a number")


def _bool(value: Any, what: str) -> bool:
    """JSON true/false, or a GpoBoolean number (0 False, 1 True)."""
    if isinstance(value, bool):
        return value
    if value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ParseError(f"{what}: {str(value)[:40]!r} is not a boolean")


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ParseError(f"{what}: expected text, got {type(value).__name__}")
    return value.strip()


def parse_ps_date(value: Any, what: str = "date") -> datetime | None:
    """A DateTime as PowerShell 5.1 or 7 writes it in JSON (UTC); None for null."""
    if value is None:
        return None
    if isinstance(value, dict):
        value = value.get("value", value.get("DateTime"))
    if not isinstance(value, str):
        raise ParseError(f"{what}: {str(value)[:40]!r} is not a date")
    text = value.strip()
    match = _DATE_MS.match(text.replace("\\/", "/"))
    try:
        if match:
            return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(match[1]))
        parsed = datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        raise ParseError(f"{what}: {text[:40]!r} is not a date") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def ps_local_date(value: Any, what: str = "date") -> date | None:
    """The calendar date of a DateTime the host holds at its local midnight (None for null).

    Windows PowerShell 5.1 writes a DateTime as UTC milliseconds with the host's offset
    lost (Microsoft's ConvertTo-Json example: a UTC-8 host's local midnight of 13 January
    2012 is ``\\/Date(1326441600000)\\/``, 08:00 UTC; a UTC+2 host's midnight falls on
    22:00 UTC of the day before). Local midnight lies within 12 hours of a UTC midnight
    for offsets from UTC-11:59 to UTC+12, so the nearest UTC midnight is the local date.
    ISO text (PowerShell 7) carries its own date and is read as written."""
    when = parse_ps_date(value, what)
    if when is None:
        return None
    raw = value.get("value", value.get("DateTime")) if isinstance(value, dict) else value
    if isinstance(raw, str) and _DATE_MS.match(raw.strip().replace("\\/", "/")):
        return (when + timedelta(hours=12)).date()
    return when.date()


# ---- OS --------------------------------------------------------------------------------

@parser
def os_facts(text: str) -> dict[str, object]:
    """``HKLM\\...\\Windows NT\\CurrentVersion``: edition, version, build and UBR.

    Windows 11 still writes "Windows 10" in ProductName; a build from 22000 on is named
    Windows 11 (Microsoft's own rule for telling them apart)."""
    reg = _one(text, "CurrentVersion")
    name = _str(reg.get("ProductName"), "ProductName")
    build = _int(reg.get("CurrentBuild", reg.get("CurrentBuildNumber")), "CurrentBuild")
    ubr = _int(reg["UBR"], "UBR") if reg.get("UBR") is not None else None
    if build >= 22000 and name.startswith("Windows 10"):
        name = "Windows 11" + name[len("Windows 10"):]
    major = reg.get("CurrentMajorVersionNumber")
    minor = reg.get("CurrentMinorVersionNumber")
    base = (f"{_int(major, 'major')}.{_int(minor, 'minor')}" if major is not None
            and minor is not None else str(reg.get("CurrentVersion") or "")).strip()
    full_build = f"{build}.{ubr}" if ubr is not None else str(build)
    release = reg.get("DisplayVersion") or reg.get("ReleaseId")
    facts: dict[str, object] = {
        "os.name": name, "os.build": full_build, "identity.vendor": MICROSOFT,
        "os.version": f"{base}.{full_build}" if base else full_build,
        "identity.os": " ".join(filter(None, [name, str(release) if release else None,
                                              f"(build {full_build})"])),
        "os.family": "windows"}
    edition = reg.get("EditionID")
    facts["os.edition"] = _str(edition, "EditionID") if edition else Unknown(
        "CurrentVersion has no EditionID")
    return facts


# ---- hotfixes --------------------------------------------------------------------------

@parser
def hotfix_facts(text: str, now: datetime) -> dict[str, object]:
    """Get-HotFix: ids with their install dates, the last patch date and its age in days."""
    fixes = []
    for item in parse_json(text, "Get-HotFix"):
        fix_id = _str(item.get("HotFixID"), "HotFixID")[:40]  # KB5046613; old hosts: "File 1"
        # InstalledOn is a date (Win32_QuickFixEngineering writes no time): local midnight
        when = ps_local_date(item.get("InstalledOn"), f"InstalledOn of {fix_id}")
        fixes.append({"id": fix_id, "installed_on": when.isoformat() if when else None})
    dates = [date.fromisoformat(f["installed_on"]) for f in fixes if f["installed_on"]]
    if not fixes:
        none = Unknown("Get-HotFix listed no update")
        return {"win.hotfixes": [], "win.last_patch_date": none, "win.patch_age_days": none}
    if not dates:
        none = Unknown("no update has an install date")
        return {"win.hotfixes": fixes, "win.last_patch_date": none, "win.patch_age_days": none}
    last = max(dates)
    return {"win.hotfixes": fixes, "win.last_patch_date": last.isoformat(),
            "win.patch_age_days": max((now.date() - last).days, 0)}


# ---- net accounts ------------------------------------------------------------------------

_NET_KEYS = {
    "Force user logoff how long after time expires?": "forcelogoff",
    "Minimum password age (days)": "min_age",
    "Maximum password age (days)": "max_age",
    "Minimum password length": "min_length",
    "Length of password history maintained": "history",
    "Lockout threshold": "threshold",
    "Lockout duration (minutes)": "duration",
    "Lockout observation window (minutes)": "window",
    "Computer role": "role",
}


@parser
def parse_net_accounts(text: str) -> dict[str, str]:
    """``net accounts`` (English) → {key: value}; unknown lines are ignored."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if not sep:
            continue
        if name.strip() in _NET_KEYS:
            values[_NET_KEYS[name.strip()]] = value.strip()
    if not {"min_length", "max_age", "threshold"} <= values.keys():
        raise ParseError("not English 'net accounts' output (minimum password length, "
                         "maximum password age or lockout threshold missing)")
    return values


def _count(value: str, what: str, never: int | None = None) -> int:
    if value.lower() in ("never", "unlimited", "none"):
        if never is None:
            raise ParseError(f"{what}: {value!r} where a number belongs")
        return never
    if not re.fullmatch(r"\d{1,9}", value):
        raise ParseError(f"{what}: {value[:30]!r} is not a number")
    return int(value)


@parser
def net_accounts_facts(values: dict[str, str]) -> dict[str, object]:
    """Password and lockout policy as the shared ``pwpol.*`` facts.

    "Unlimited" maximum age is 99999 days (the Linux "never expires"); "Never" lockout
    threshold means no lockout; a "Never" duration means an administrator must unlock (0)."""
    threshold = _count(values["threshold"], "Lockout threshold", never=0)
    facts: dict[str, object] = {
        "pwpol.min_length": _count(values["min_length"], "Minimum password length"),
        "pwpol.max_days": _count(values["max_age"], "Maximum password age", never=99999),
        "pwpol.min_days": _count(values.get("min_age", "0"), "Minimum password age"),
        "pwpol.history": _count(values.get("history", "None"), "password history", never=0),
        "pwpol.lockout_configured": threshold > 0,
    }
    if threshold == 0:  # Windows' own 0: never locks (the lockout checks fail on it)
        facts["pwpol.lockout_deny"] = 0
        facts["pwpol.lockout_unlock_time"] = Unknown(
            "net accounts: lockout threshold Never (no lockout)")
    else:
        facts["pwpol.lockout_deny"] = threshold
        duration = values.get("duration")
        facts["pwpol.lockout_unlock_time"] = (
            _count(duration, "Lockout duration", never=0) * 60 if duration
            else Unknown("net accounts shows no lockout duration"))
    return facts


# ---- auditpol /r ---------------------------------------------------------------------------

# Subcategories that record the events SR 2.8 names (access control, account and audit
# policy changes, system events), with what each must include.
REQUIRED_AUDIT = {
    "Logon": "Success and Failure",
    "Account Lockout": "Failure",
    "User Account Management": "Success and Failure",
    "Security Group Management": "Success",
    "Audit Policy Change": "Success",
    "Authentication Policy Change": "Success",
    "Sensitive Privilege Use": "Success and Failure",
    "Security State Change": "Success",
    "Security System Extension": "Success",
    "System Integrity": "Success and Failure",
    "Process Creation": "Success",
}
_SETTINGS = ("No Auditing", "Success", "Failure", "Success and Failure")


@parser
def parse_auditpol(text: str) -> tuple[str | None, dict[str, str]]:
    """``auditpol /get /category:* /r`` (CSV) → (machine name, {subcategory: setting})."""
    try:
        rows = list(csv.reader(io.StringIO(text.strip().lstrip("\ufeff"), newline="")))
    except csv.Error as exc:
        raise ParseError(f"auditpol /r output is not CSV: {exc}") from None
    if not rows or [c.strip() for c in rows[0][:5]] != [
            "Machine Name", "Policy Target", "Subcategory", "Subcategory GUID",
            "Inclusion Setting"]:
        raise ParseError("not auditpol /r output (header missing)")
    policy: dict[str, str] = {}
    machine = None
    for number, row in enumerate(rows[1:], start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) < 5:
            raise ParseError(f"auditpol line {number}: {len(row)} columns, expected 6")
        setting = row[4].strip()
        if setting not in _SETTINGS:
            raise ParseError(f"auditpol line {number}: setting {setting[:30]!r}")
        policy[row[2].strip()] = setting
        machine = machine or row[0].strip() or None
    if not policy:
        raise ParseError("auditpol /r listed no subcategory")
    return machine, policy


def _covers(setting: str, needed: str) -> bool:
    have = set(setting.split(" and ")) - {"No Auditing"}
    return set(needed.split(" and ")) <= have


def audit_facts(parsed: tuple[str | None, dict[str, str]]) -> dict[str, object]:
    """The policy, the required subcategories it does not audit as needed, and the
    machine name auditpol reports (the host's name)."""
    machine, policy = parsed
    gaps = [f"{sub}: {policy.get(sub, 'absent')} (needs {need})"
            for sub, need in REQUIRED_AUDIT.items() if not _covers(policy.get(sub, ""), need)]
    return {"win.audit_policy": policy, "win.audit_gaps": gaps,
            "identity.name": machine or Unknown("auditpol names no machine")}


# ---- Defender, firewall, SMB, RDP, USB ------------------------------------------------------

@parser
def defender_facts(text: str) -> dict[str, object]:
    """Get-MpComputerStatus: antivirus and real-time protection on, signature age (days)."""
    status = _one(text, "Get-MpComputerStatus")
    enabled = (_bool(status.get("AMServiceEnabled"), "AMServiceEnabled")
               and _bool(status.get("AntivirusEnabled"), "AntivirusEnabled"))
    age = _int(status.get("AntivirusSignatureAge"), "AntivirusSignatureAge")
    if age > 60000:  # 65535: no signature was ever loaded
        return {"av.enabled": enabled, "av.realtime": _bool(
            status.get("RealTimeProtectionEnabled"), "RealTimeProtectionEnabled"),
            "av.signature_age_days": Unknown(f"no signature loaded (age {age})"),
            "av.product": "Microsoft Defender Antivirus"}
    return {"av.enabled": enabled,
            "av.realtime": _bool(status.get("RealTimeProtectionEnabled"),
                                 "RealTimeProtectionEnabled"),
            "av.signature_age_days": age, "av.product": "Microsoft Defender Antivirus"}


_INBOUND = {0: "NotConfigured", 2: "Allow", 4: "Block"}


@parser
def firewall_facts(text: str) -> dict[str, object]:
    """Get-NetFirewallProfile: each profile on/off and its default inbound action."""
    profiles = []
    for item in parse_json(text, "Get-NetFirewallProfile"):
        name = _str(item.get("Name"), "Name")
        enabled_raw = item.get("Enabled")
        enabled = None if enabled_raw == 2 else _bool(enabled_raw, f"Enabled of {name}")
        inbound = item.get("DefaultInboundAction")
        if isinstance(inbound, int) and not isinstance(inbound, bool):
            inbound = _INBOUND.get(inbound, str(inbound))
        profiles.append({"name": name, "enabled": enabled,
                         "default_inbound": str(inbound) if inbound is not None else None})
    if not profiles:
        raise ParseError("Get-NetFirewallProfile listed no profile")
    if any(p["enabled"] is None for p in profiles):
        every: object = Unknown("a firewall profile is NotConfigured (set by no policy)")
    else:
        every = all(p["enabled"] for p in profiles)
    return {"win.firewall_profiles": profiles, "win.firewall_enabled": every}


@parser
def smb_facts(text: str) -> dict[str, object]:
    """Get-SmbServerConfiguration: SMBv1 server protocol on or off."""
    conf = _one(text, "Get-SmbServerConfiguration")
    return {"win.smb1_enabled": _bool(conf.get("EnableSMB1Protocol"), "EnableSMB1Protocol")}


@parser
def rdp_facts(server_text: str, rdp_tcp_text: str) -> dict[str, object]:
    """fDenyTSConnections (1: RDP refused) and RDP-Tcp UserAuthentication (1: NLA)."""
    deny = _int(_one(server_text, "Terminal Server").get("fDenyTSConnections"),
                "fDenyTSConnections")
    listener = _one(rdp_tcp_text, "RDP-Tcp")
    nla = _int(listener.get("UserAuthentication"), "UserAuthentication")
    return {"win.rdp_enabled": deny == 0, "win.rdp_nla": nla == 1}


_PRINCIPAL = {0: "Unknown", 1: "Local", 2: "ActiveDirectory", 3: "AzureAD",
              4: "MicrosoftAccount"}


@parser
def local_admin_facts(text: str) -> dict[str, object]:
    """Get-LocalGroupMember of BUILTIN\\Administrators (S-1-5-32-544)."""
    members = []
    for item in parse_json(text, "Get-LocalGroupMember"):
        source = item.get("PrincipalSource")
        if isinstance(source, int) and not isinstance(source, bool):
            source = _PRINCIPAL.get(source, str(source))
        members.append({"name": _str(item.get("Name"), "Name"),
                        "kind": str(item.get("ObjectClass") or ""),
                        "source": str(source) if source is not None else None})
    return {"win.local_admins": members, "win.local_admin_count": len(members)}


@parser
def usb_storage_facts(text: str) -> dict[str, object]:
    """USBSTOR service Start value: 4 disables the USB mass-storage driver."""
    start = _int(_one(text, "USBSTOR").get("Start"), "Start")
    if start not in range(5):
        raise ParseError(f"USBSTOR Start {start} is not a service start type")
    return {"win.usb_storage_enabled": start != 4}


# ---- w32tm ------------------------------------------------------------------------------

_LOCAL = ("Local CMOS Clock", "Free-running System Clock")
_HOST_CLOCK = "VM IC Time Synchronization Provider"  # a Hyper-V guest following its host
# w32tm writes its labels in the display language; the source names stay English (real
# German captures: "Quelle: Local CMOS Clock"). Labels of the languages seen in real output.
_W32TM_LABELS = {"Leap Indicator": "leap", "Sprungindikator": "leap",
                 "Source": "source", "Quelle": "source"}
_W32TM_ERROR = re.compile(r"^(.{0,160}\((0x8[0-9A-Fa-f]{7})\))\s*$", re.MULTILINE)


@parser
def w32tm_facts(text: str) -> dict[str, object]:
    """``w32tm /query /status``: synchronised (leap indicator not 3, a real source) and the
    source; the service not started (0x80070426, any language) means not synchronised.

    English and German labels are read; any other language, or another w32tm error (e.g.
    access denied, 0x80070005), is a parse error that names what was found. A Hyper-V guest
    on the VM IC provider follows its host's clock: whether that is synchronised cannot be
    seen from the guest, so ``time.synchronized`` is unknown there, not false."""
    if "0x80070426" in text or "service has not been started" in text:
        return {"time.synchronized": False, "time.ntp_sources": [],
                "time.source": Unknown("the Windows Time service is not running")}
    values: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        field = _W32TM_LABELS.get(name.strip())
        if sep and field:
            values.setdefault(field, value.strip())
    if "leap" not in values or "source" not in values:
        error = _W32TM_ERROR.search(text)
        if error:
            raise ParseError(f"w32tm failed: {error[1].strip()[:120]}")
        raise ParseError("w32tm /query /status output in no known language (English, "
                         "German): no leap indicator or source line")
    leap = re.match(r"(\d)", values["leap"])
    if not leap:
        raise ParseError(f"Leap Indicator {values['leap'][:30]!r}")
    source = values["source"].split(",")[0].strip()  # "time.windows.com,0x9": flags follow
    if source == _HOST_CLOCK:
        synchronized: object = False if leap[1] == "3" else Unknown(
            "the clock follows the Hyper-V host (VM IC Time Synchronization Provider); "
            "whether the host is synchronised is not visible from the guest")
        return {"time.synchronized": synchronized, "time.ntp_sources": [],
                "time.source": source}
    local = not source or source in _LOCAL
    return {"time.synchronized": leap[1] != "3" and not local,
            "time.ntp_sources": [] if local else [source],
            "time.source": source or "none"}


# ---- services, event forwarding ---------------------------------------------------------

_RUNNING = {4: "Running", 1: "Stopped"}


@parser
def service_facts(text: str) -> dict[str, object]:
    """Get-Service Sysmon*, Wecsvc, WinRM: Sysmon present and running, WEF collector."""
    services = {}
    for item in parse_json(text, "Get-Service"):
        status = item.get("Status")
        status = _RUNNING.get(status, str(status)) if isinstance(status, int) else str(status)
        services[_str(item.get("Name"), "Name")] = status
    sysmon = [name for name in services if name.lower().startswith("sysmon")]
    return {"logging.sysmon_installed": bool(sysmon),
            "logging.sysmon_running": any(services[n] == "Running" for n in sysmon)}


@parser
def forwarding_facts(text: str | None) -> dict[str, object]:
    """SubscriptionManager policy (WEF source-initiated subscription); None: key absent."""
    if text is None:
        return {"logging.event_forwarding": False, "logging.remote_enabled": False}
    managers = [str(v) for k, v in _one(text, "SubscriptionManager").items()
                if re.fullmatch(r"\d{1,3}", k) and v]
    return {"logging.event_forwarding": bool(managers),
            "logging.remote_enabled": bool(managers)}


# ---- installed software --------------------------------------------------------------------

PRODUCTS_FILE = Path(__file__).with_name("ics_products.yaml")
_PRODUCTS: list[dict[str, Any]] | None = None


def ics_table() -> list[dict[str, Any]]:
    """Known ICS products: vendor, product, DisplayName pattern and how to read the version."""
    global _PRODUCTS
    if _PRODUCTS is None:
        data = yaml.safe_load(PRODUCTS_FILE.read_text(encoding="utf-8"))
        _PRODUCTS = [{**p, "regex": re.compile(p["match"], re.IGNORECASE)}
                     for p in data["products"]]
    return _PRODUCTS


def siemens_version(display_version: str) -> str | None:
    """``07.04.01.00`` → ``V7.4 SP1``; ``07.05.02.08`` → ``V7.5 SP2 Update 8``."""
    match = re.fullmatch(r"0?(\d{1,2})\.0?(\d{1,2})(?:\.0?(\d{1,2}))?(?:\.0?(\d{1,3}))?",
                         display_version.strip())
    if not match:
        return None
    major, minor, sp, update = match.groups()
    text = f"V{int(major)}.{int(minor)}"
    if sp and int(sp):
        text += f" SP{int(sp)}"
    if update and int(update):
        text += f" Update {int(update)}"
    return text


def _product(name: str, version: str | None, publisher: str | None) -> dict[str, str] | None:
    for entry in ics_table():
        match = entry["regex"].search(name)
        if not match:
            continue
        if entry.get("publisher") and not re.search(entry["publisher"], publisher or "", re.I):
            continue
        found = match.groupdict().get("version")
        if not found and version:
            found = siemens_version(version) if entry.get("version") == "siemens" else version
        if not found:
            return None
        found = re.sub(r"\s+", " ", found.strip())
        found = re.sub(r"\b(?:Upd|Update)\s*(\d+)", r"Update \1", found)
        return {"vendor": entry["vendor"], "product": entry["product"], "version": found,
                "display_name": name}
    return None


@parser
def software_facts(text: str) -> dict[str, object]:
    """Uninstall entries of both registry views → packages and the ICS products among them."""
    packages, products, seen = [], [], set()
    for item in parse_json(text, "Uninstall"):
        name = item.get("DisplayName")
        if not isinstance(name, str) or not name.strip():
            continue
        version = item.get("DisplayVersion")
        version = str(version).strip() if version not in (None, "") else None
        key = (name.strip(), version)
        if key in seen:
            continue  # the same product in both views
        seen.add(key)
        packages.append({"name": name.strip(), "version": version})
        publisher = item.get("Publisher")
        product = _product(name.strip(), version,
                           publisher if isinstance(publisher, str) else None)
        if product and product not in products:
            products.append(product)
    return {"software.packages": packages, "software.ics_products": products}
