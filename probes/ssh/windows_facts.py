"""Windows host (HMI, SCADA server, engineering station) facts from the allowlisted outputs."""

from __future__ import annotations

from datetime import datetime

from otaudit.probes.ssh import windows
from otaudit.probes.ssh.allowlist import WINDOWS
from otaudit.probes.ssh.outputs import Outputs


def collect_windows(out: Outputs, now: datetime) -> None:
    """Record every Windows fact (or its unknown reason) from the session's outputs."""
    cmd = WINDOWS
    out.group(["os.name", "os.version", "os.build", "os.edition", "os.family", "identity.os",
               "identity.vendor"], lambda: windows.os_facts(out.text(cmd["os"])))
    out.group(["win.hotfixes", "win.last_patch_date", "win.patch_age_days"],
              lambda: windows.hotfix_facts(out.text(cmd["hotfix"]), now))
    out.group(["pwpol.min_length", "pwpol.max_days", "pwpol.min_days", "pwpol.history",
               "pwpol.lockout_configured", "pwpol.lockout_deny", "pwpol.lockout_unlock_time"],
              lambda: windows.net_accounts_facts(windows.parse_net_accounts(
                  out.text(cmd["accounts"]))))
    out.group(["win.audit_policy", "win.audit_gaps", "identity.name"], lambda: windows.audit_facts(
        windows.parse_auditpol(out.text(cmd["audit"]))))
    out.group(["av.enabled", "av.realtime", "av.signature_age_days", "av.product"],
              lambda: windows.defender_facts(out.text(cmd["defender"])))
    out.group(["win.firewall_profiles", "win.firewall_enabled"],
              lambda: windows.firewall_facts(out.text(cmd["firewall"])))
    out.group(["win.smb1_enabled"], lambda: windows.smb_facts(out.text(cmd["smb"])))
    out.group(["win.rdp_enabled", "win.rdp_nla"], lambda: windows.rdp_facts(
        out.text(cmd["rdp"]), out.text(cmd["rdp_tcp"])))
    out.group(["win.local_admins", "win.local_admin_count"],
              lambda: windows.local_admin_facts(out.text(cmd["admins"])))
    out.group(["win.usb_storage_enabled"],
              lambda: windows.usb_storage_facts(out.text(cmd["usb"])))
    out.group(["time.synchronized", "time.ntp_sources", "time.source"],
              lambda: windows.w32tm_facts(out.text(cmd["time"], any_exit=True)))
    out.group(["logging.sysmon_installed", "logging.sysmon_running"],
              lambda: windows.service_facts(out.text(cmd["services"], any_exit=True)))
    out.group(["logging.event_forwarding", "logging.remote_enabled"],
              lambda: windows.forwarding_facts(out.text(cmd["wef"], missing_ok=True)))
    out.group(["software.packages", "software.ics_products"],
              lambda: windows.software_facts(out.text(cmd["software"])))
