"""Facts the WinRM probe can produce: the Windows host facts of the SSH probe's ``windows``
personality (same commands, same parsers, same paths) and the WinRM transport."""

from __future__ import annotations

from otaudit.facts import FactSpec
from otaudit.probes.ssh.facts import FACTS as SSH_FACTS

# What ``otaudit.probes.ssh.windows_facts.collect_windows`` records (or marks unknown).
WINDOWS_HOST = (
    "identity.vendor", "identity.name", "identity.os",
    "os.name", "os.version", "os.build", "os.edition", "os.family",
    "win.hotfixes", "win.last_patch_date", "win.patch_age_days",
    "pwpol.min_length", "pwpol.max_days", "pwpol.min_days", "pwpol.history",
    "pwpol.lockout_configured", "pwpol.lockout_deny", "pwpol.lockout_unlock_time",
    "win.audit_policy", "win.audit_gaps",
    "av.enabled", "av.realtime", "av.signature_age_days", "av.product",
    "win.firewall_profiles", "win.firewall_enabled", "win.smb1_enabled",
    "win.rdp_enabled", "win.rdp_nla", "win.local_admins", "win.local_admin_count",
    "win.usb_storage_enabled", "time.synchronized", "time.ntp_sources", "time.source",
    "logging.sysmon_installed", "logging.sysmon_running", "logging.event_forwarding",
    "logging.remote_enabled", "software.packages", "software.ics_products",
)

TRANSPORT: dict[str, FactSpec] = {
    "winrm.scheme": FactSpec("enum", "Transport of the WinRM endpoint", ("https", "http")),
    "winrm.auth_offered": FactSpec("list", "Authentication schemes the listener offers "
                                           "(WWW-Authenticate: negotiate, kerberos, basic, ...)"),
    "winrm.auth": FactSpec("enum", "Authentication used to log in", ("basic", "ntlm",
                                                                   "kerberos")),
    "winrm.cert_sha256": FactSpec("str", "SHA-256 fingerprint of the listener's certificate"),
    "winrm.cert_self_signed": FactSpec("bool", "The listener's certificate signs itself"),
    "winrm.cert_days_left": FactSpec("int", "Days from the probe run to the end of the "
                                            "certificate's validity (negative: expired)"),
}

FACTS: dict[str, FactSpec] = {**{path: SSH_FACTS[path] for path in WINDOWS_HOST},
                              **TRANSPORT}
LOGIN_FACTS = WINDOWS_HOST
