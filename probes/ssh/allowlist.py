"""The only commands the probe may run, per personality (enforced by ``client.SshSession``).

Every entry reads state; none changes the device. Exact strings only: no arguments are
ever interpolated, so nothing reaches a device shell that is not listed here.
"""

from __future__ import annotations

from otaudit.probes.base import ForbiddenOperation

ENABLED_UNITS = "systemctl list-unit-files --type=service --state=enabled --no-legend --no-pager"

_JSON = " | ConvertTo-Json -Compress"
_TS = r"HKLM:\SYSTEM\CurrentControlSet\Control\Terminal Server"
_UNINSTALL = r"SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall\*"
# Windows over OpenSSH for Windows with PowerShell as the shell: read-only cmdlets and
# tools only (Get-*, net accounts without options, auditpol /get, w32tm /query), each
# PowerShell pipeline ending in ConvertTo-Json so the parsers read JSON, not screen text.
WINDOWS: dict[str, str] = {
    "os": r"Get-ItemProperty 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion' | "
          "Select-Object ProductName,EditionID,DisplayVersion,ReleaseId,CurrentBuild,UBR,"
          "CurrentMajorVersionNumber,CurrentMinorVersionNumber" + _JSON,
    "hotfix": "Get-HotFix | Select-Object HotFixID,InstalledOn" + _JSON,
    "accounts": "net accounts",
    "audit": "auditpol /get /category:* /r",
    "defender": "Get-MpComputerStatus | Select-Object AMServiceEnabled,AntivirusEnabled,"
                "RealTimeProtectionEnabled,AntivirusSignatureAge,"
                "AntivirusSignatureLastUpdated" + _JSON,
    "firewall": "Get-NetFirewallProfile | Select-Object Name,Enabled,DefaultInboundAction"
                + _JSON,
    "smb": "Get-SmbServerConfiguration | Select-Object EnableSMB1Protocol,EnableSMB2Protocol"
           + _JSON,
    "rdp": f"Get-ItemProperty '{_TS}' | Select-Object fDenyTSConnections" + _JSON,
    "rdp_tcp": f"Get-ItemProperty '{_TS}\\WinStations\\RDP-Tcp' | "
               "Select-Object UserAuthentication,SecurityLayer" + _JSON,
    "admins": "Get-LocalGroupMember -SID S-1-5-32-544 | "
              "Select-Object Name,ObjectClass,PrincipalSource" + _JSON,
    "usb": r"Get-ItemProperty 'HKLM:\SYSTEM\CurrentControlSet\Services\USBSTOR' | "
           "Select-Object Start" + _JSON,
    "time": "w32tm /query /status",
    "services": "Get-Service Sysmon*,Wecsvc,WinRM -ErrorAction SilentlyContinue | "
                "Select-Object Name,Status,StartType" + _JSON,
    "wef": r"Get-ItemProperty 'HKLM:\SOFTWARE\Policies\Microsoft\Windows\EventLog"
           r"\EventForwarding\SubscriptionManager'" + _JSON,
    "software": f"Get-ItemProperty 'HKLM:\\{_UNINSTALL}','HKLM:\\"
                + _UNINSTALL.replace("SOFTWARE", "SOFTWARE\\WOW6432Node", 1)
                + "' | Where-Object DisplayName | "
                "Select-Object DisplayName,DisplayVersion,Publisher,InstallDate" + _JSON,
}

ALLOWLIST: dict[str, tuple[str, ...]] = {
    "linux": (
        "cat /etc/os-release",
        "uname -a",
        "sshd -T",
        "cat /etc/ssh/sshd_config",
        "cat /etc/ssh/sshd_config.d/*.conf",
        "cat /etc/default/dropbear",
        "cat /etc/login.defs",
        "cat /etc/pam.d/common-password",
        "cat /etc/pam.d/common-auth",
        "cat /etc/security/pwquality.conf",
        "cat /etc/security/faillock.conf",
        "cat /etc/rsyslog.conf",
        "cat /etc/rsyslog.d/*.conf",
        "cat /etc/syslog-ng/syslog-ng.conf",
        "cat /etc/syslog-ng/conf.d/*.conf",
        "cat /etc/syslog-startup.conf",
        "cat /etc/systemd/journal-upload.conf",
        "cat /etc/audit/plugins.d/au-remote.conf",
        "cat /etc/audit/audisp-remote.conf",
        "systemctl is-active auditd",
        "auditctl -l",
        "timedatectl show",
        "chronyc tracking",
        "cat /etc/chrony/chrony.conf",
        "cat /etc/systemd/timesyncd.conf",
        "cat /etc/ntp.conf",
        "cat /etc/ntpsec/ntp.conf",
        "ss -tlnupH",
        "dpkg-query -W",
        ENABLED_UNITS,
    ),
    "cisco_ios": ("show version", "show running-config"),
    "hirschmann_hios": ("show system info", "show running-config script all"),
    "windows": tuple(WINDOWS.values()),
}


def check(personality: str, command: str) -> None:
    """Raise ``ForbiddenOperation`` unless ``command`` is allowlisted for ``personality``."""
    if command not in ALLOWLIST.get(personality, ()):
        raise ForbiddenOperation(f"command {command[:80]!r} is not allowlisted for {personality}")
