"""The only commands the probe may run, per personality (enforced by ``client.SshSession``).

Every entry reads state; none changes the device. Exact strings only: no arguments are
ever interpolated, so nothing reaches a device shell that is not listed here.
"""

from __future__ import annotations

from otaudit.probes.base import ForbiddenOperation

ENABLED_UNITS = "systemctl list-unit-files --type=service --state=enabled --no-legend --no-pager"

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
}


def check(personality: str, command: str) -> None:
    """Raise ``ForbiddenOperation`` unless ``command`` is allowlisted for ``personality``."""
    if command not in ALLOWLIST.get(personality, ()):
        raise ForbiddenOperation(f"command {command[:80]!r} is not allowlisted for {personality}")
