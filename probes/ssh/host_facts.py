"""Linux host (HMI, engineering workstation) facts from the allowlisted outputs."""

from __future__ import annotations

from otaudit.probes.base import ParseError
from otaudit.probes.ssh.algorithms import weak
from otaudit.probes.ssh.allowlist import ENABLED_UNITS
from otaudit.probes.ssh.facts import HOST
from otaudit.probes.ssh.outputs import Outputs, Unavailable
from otaudit.probes.ssh.parse import audit, host_inventory, os_release, pam, sshd, timesync
from otaudit.probes.ssh.parse import logging as logparse
from otaudit.probes.ssh.parse.common import ISSUES, Issues, Unknown

JOURNAL_UPLOAD_UNIT = "systemd-journal-upload.service"


def _os(out: Outputs) -> dict[str, object]:
    return os_release.os_identity(os_release.parse_os_release(out.text("cat /etc/os-release")))


def _uname(out: Outputs) -> dict[str, object]:
    _, node, release = os_release.parse_uname(out.text("uname -a"))
    return {"os.kernel": release, "identity.name": node}


def _password_policy(out: Outputs) -> dict[str, object]:
    stack = pam.parse_pam_stack(out.text("cat /etc/pam.d/common-password"))
    conf = out.text("cat /etc/security/pwquality.conf", missing_ok=True)
    return {"pwpol.min_length": pam.min_length(stack, pam.parse_simple_conf(conf)
                                               if conf is not None else None)}


def _hash(out: Outputs) -> dict[str, object]:
    stack = pam.parse_pam_stack(out.text("cat /etc/pam.d/common-password"))
    defs = out.text("cat /etc/login.defs", missing_ok=True)
    return {"pwpol.hash_method": pam.hash_method(stack, pam.parse_login_defs(defs)
                                                 if defs is not None else None)}


def _lockout(out: Outputs) -> dict[str, object]:
    stack = pam.parse_pam_stack(out.text("cat /etc/pam.d/common-auth"))
    conf = out.text("cat /etc/security/faillock.conf", missing_ok=True)
    return pam.lockout(stack, pam.parse_simple_conf(conf) if conf is not None else None)


SYSLOG_FILES = ("cat /etc/rsyslog.conf", "cat /etc/syslog-ng/syslog-ng.conf",
                "cat /etc/syslog-startup.conf", "cat /etc/systemd/journal-upload.conf")


def _remote_logging(out: Outputs) -> dict[str, object]:
    """Remote targets of every syslog daemon found (rsyslog, syslog-ng, busybox syslogd),
    journal-upload (when its unit is enabled) and audisp-remote; unknown when no syslog
    configuration exists at all (no daemon we know of: cannot tell)."""
    issues: dict[str, Issues] = {}
    targets: list[dict[str, object]] = []
    found = False
    for command, dropins, parse in (
            ("cat /etc/rsyslog.conf", "cat /etc/rsyslog.d/*.conf", logparse.parse_rsyslog),
            ("cat /etc/syslog-ng/syslog-ng.conf", "cat /etc/syslog-ng/conf.d/*.conf",
             logparse.parse_syslog_ng),
            ("cat /etc/syslog-startup.conf", None, logparse.parse_busybox_syslog)):
        main = out.text(command, missing_ok=True)
        extra = out.text(dropins, missing_ok=True) if dropins else None
        if main is None and extra is None:
            continue
        found = True
        issues[command] = Issues()
        targets += parse((main or "") + "\n" + (extra or ""), issues[command])
    journal = out.text("cat /etc/systemd/journal-upload.conf", missing_ok=True)
    upload = logparse.parse_journal_upload(journal) if journal else None
    units = out.optional(ENABLED_UNITS)
    if upload and (units is None or JOURNAL_UPLOAD_UNIT in
                   host_inventory.parse_enabled_units(units)):
        targets.append(upload)
    found = found or journal is not None
    plugin = out.text("cat /etc/audit/plugins.d/au-remote.conf", missing_ok=True)
    remote = out.text("cat /etc/audit/audisp-remote.conf", missing_ok=True)
    if plugin and remote:
        audisp = logparse.parse_audisp_remote(plugin, remote)
        if audisp:
            targets.append(audisp)
    if not found and not targets:
        reason = Unknown("no syslog configuration found (rsyslog, syslog-ng, busybox "
                         "syslogd, journal-upload): cannot tell where logs go")
        return dict.fromkeys(("logging.remote_targets", "logging.remote_enabled",
                              "logging.remote_tls"), reason)
    return {"logging.remote_targets": targets, "logging.remote_enabled": bool(targets),
            "logging.remote_tls": all(t["tls"] for t in targets) if targets
            else Unknown("no remote log target configured"), ISSUES: issues}


def _synchronized(out: Outputs) -> dict[str, object]:
    try:
        values = timesync.parse_timedatectl_show(out.text("timedatectl show"))
        return {"time.synchronized": timesync.timedatectl_synchronized(values)}
    except (Unavailable, ParseError):  # fall back to chrony
        tracking = out.optional("chronyc tracking")
        if tracking is None:
            raise
        return {"time.synchronized": timesync.parse_chronyc_tracking(tracking)}


def _ntp_sources(out: Outputs) -> dict[str, object]:
    """Sources of every time daemon configuration found; unknown when none exists, and
    when timesyncd names none (it then uses its compiled-in FallbackNTP servers)."""
    sources: list[str] = []
    issues: dict[str, Issues] = {}
    found: list[str] = []
    for command, parse in (("cat /etc/chrony/chrony.conf", timesync.parse_chrony_sources),
                           ("cat /etc/ntp.conf", timesync.parse_ntp_conf_sources),
                           ("cat /etc/ntpsec/ntp.conf", timesync.parse_ntp_conf_sources),
                           ("cat /etc/systemd/timesyncd.conf",
                            timesync.parse_timesyncd_sources)):
        text = out.text(command, missing_ok=True)
        if text is None:
            continue
        found.append(command)
        issues[command] = Issues()
        sources += [s for s in parse(text, issues[command]) if s not in sources]
    if not found:
        return {"time.ntp_sources": Unknown(
            "no time synchronisation configuration found (chrony, ntpd/ntpsec ntp.conf, "
            "systemd-timesyncd)")}
    if not sources and found == ["cat /etc/systemd/timesyncd.conf"]:
        fallback = timesync.parse_timesyncd_sources(
            out.text("cat /etc/systemd/timesyncd.conf") or "", Issues(), key="FallbackNTP")
        if not fallback:
            return {"time.ntp_sources": Unknown(
                "timesyncd.conf names no NTP= server: timesyncd uses its compiled-in "
                "FallbackNTP servers, which the configuration does not show")}
        sources = fallback
    return {"time.ntp_sources": sources, ISSUES: issues}


def _sshd(out: Outputs, banner: str | None) -> dict[str, object]:
    """``sshd -T`` (needs root); else sshd_config evaluated; Dropbear from its flags."""
    try:
        return sshd.sshd_facts(sshd.parse_sshd_t(out.text("sshd -T")))
    except (Unavailable, ParseError) as exc:
        first = exc
    if banner and "dropbear" in banner.lower():
        return sshd.dropbear_facts(out.optional("cat /etc/default/dropbear"))
    main = out.optional("cat /etc/ssh/sshd_config")
    if main is None:
        raise first
    issues = Issues()
    config = sshd.parse_sshd_config(
        main, out.optional("cat /etc/ssh/sshd_config.d/*.conf"),
        (banner or "").removeprefix("SSH-2.0-"), issues)
    return {**sshd.sshd_facts(config), ISSUES: {"cat /etc/ssh/sshd_config": issues}}


# sshd's effective algorithm lists and the weak ones among them, judged by the same table
# (weak_algorithms.yaml) as the algorithms the server offers on the wire (ssh.weak_*).
WEAK_OF = {"sshd.weak_ciphers": ("ciphers", "sshd.ciphers"),
           "sshd.weak_macs": ("macs", "sshd.macs"),
           "sshd.weak_kex": ("kex", "sshd.kex_algorithms")}


def _with_weak(facts: dict[str, object]) -> dict[str, object]:
    for path, (category, source) in WEAK_OF.items():
        if isinstance(facts.get(source), list):
            facts[path] = weak(category, facts[source])  # type: ignore[arg-type]
    return facts


def collect_linux(out: Outputs, banner: str | None = None) -> None:
    """Record every host fact (or its unknown reason) from the session's outputs.

    ``banner`` is the server's identification string (Dropbear has no sshd -T/config)."""
    out.group(["os.name", "os.version", "identity.os", "identity.vendor"], lambda: _os(out))
    out.group(["os.kernel", "identity.name"], lambda: _uname(out))
    out.group([p for p in HOST if p.startswith("sshd.")], lambda: _with_weak(_sshd(out, banner)))
    out.group(["pwpol.max_days", "pwpol.min_days"], lambda: pam.login_defs_facts(
        pam.parse_login_defs(out.text("cat /etc/login.defs"))))
    out.group(["pwpol.min_length"], lambda: _password_policy(out))
    out.group(["pwpol.hash_method"], lambda: _hash(out))
    out.group(["pwpol.lockout_configured", "pwpol.lockout_deny", "pwpol.lockout_unlock_time"],
              lambda: _lockout(out))
    out.group(["logging.remote_targets", "logging.remote_enabled", "logging.remote_tls"],
              lambda: _remote_logging(out))
    out.group(["logging.auditd_active"], lambda: {"logging.auditd_active": audit.parse_is_active(
        out.text("systemctl is-active auditd", any_exit=True))})
    out.group(["logging.audit_rules"], lambda: {"logging.audit_rules": audit.parse_auditctl_rules(
        out.text("auditctl -l"))})
    out.group(["time.synchronized"], lambda: _synchronized(out))
    out.group(["time.ntp_sources"], lambda: _ntp_sources(out))
    out.group(["services.listening"], lambda: {"services.listening": host_inventory.parse_ss(
        out.text("ss -tlnupH"))})
    out.group(["services.enabled"], lambda: {"services.enabled":
              host_inventory.parse_enabled_units(out.text(ENABLED_UNITS))})
    out.group(["software.packages"], lambda: {"software.packages":
              host_inventory.parse_dpkg_query(out.text("dpkg-query -W"))})

