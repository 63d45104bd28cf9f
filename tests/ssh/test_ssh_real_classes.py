"""The classes of issue 14 on real recordings: effective sshd configuration, release defaults,
one bad line, daemons beyond rsyslog/chrony, and 'unknown' instead of an empty list."""

from __future__ import annotations

from pathlib import Path

import pytest

from otaudit.probes.base import ParseError, Recorder
from otaudit.probes.ssh.client import CommandResult
from otaudit.probes.ssh.host_facts import _ntp_sources, _remote_logging, _sshd
from otaudit.probes.ssh.outputs import Outputs
from otaudit.probes.ssh.parse import ios, sshd, timesync
from otaudit.probes.ssh.parse import logging as logparse
from otaudit.probes.ssh.parse.common import ISSUES, Issues, Unknown
from otaudit.probes.ssh.switch_facts import collect_ios

LINUX = Path(__file__).parents[1] / "fixtures" / "ssh" / "linux"
SYSLOG_FILES = ["cat /etc/rsyslog.conf", "cat /etc/rsyslog.d/*.conf",
                "cat /etc/syslog-ng/syslog-ng.conf", "cat /etc/syslog-ng/conf.d/*.conf",
                "cat /etc/syslog-startup.conf", "cat /etc/systemd/journal-upload.conf",
                "cat /etc/audit/plugins.d/au-remote.conf", "cat /etc/audit/audisp-remote.conf"]
SSHD_KEYS = ("sshd.permit_root_login", "sshd.password_authentication",
             "sshd.permit_empty_passwords", "sshd.pubkey_authentication",
             "sshd.kbd_interactive_authentication", "sshd.x11_forwarding",
             "sshd.max_auth_tries", "sshd.client_alive_interval", "sshd.login_grace_time",
             "sshd.log_level", "sshd.authentication_methods")


def real(shared_dir: Path, *parts: str) -> str:
    return shared_dir.joinpath("fixtures", "real", *parts).read_text()


def outputs(files: dict[str, str | None], personality: str = "linux") -> Outputs:
    """Command results as a Linux host answers them: a missing file is cat's error."""
    results = {}
    for command, text in files.items():
        if text is None:
            path = command.split(None, 1)[1]
            results[command] = CommandResult(
                command, b"", f"cat: {path}: No such file or directory\n".encode(), 1, False,
                False)
        else:
            results[command] = CommandResult(command, text.encode(), b"", 0, False, False)
    return Outputs(Recorder(), results, personality, 5.0)


# --- sshd: AuthenticationMethods, config evaluation, Dropbear -----------------------------

def test_authentication_methods_publickey_turns_password_off(shared_dir: Path) -> None:
    """Debian 12's real sshd -T with AuthenticationMethods publickey (one line changed)."""
    text = real(shared_dir, "ssh", "debian12_default", "sshd-T_effective.txt")
    assert "authenticationmethods any" in text and "passwordauthentication yes" in text
    facts = sshd.sshd_facts(sshd.parse_sshd_t(
        text.replace("authenticationmethods any", "authenticationmethods publickey")))
    assert facts["sshd.password_authentication"] is False  # set yes, but never usable
    assert facts["sshd.authentication_methods"] == ["publickey"]
    two = sshd.sshd_facts(sshd.parse_sshd_t(text.replace(
        "authenticationmethods any", "authenticationmethods publickey,password publickey")))
    assert two["sshd.password_authentication"] is True  # second factor after a key
    assert sshd.sshd_facts(sshd.parse_sshd_t(text))["sshd.authentication_methods"] == ["any"]


@pytest.mark.parametrize(("config", "effective"), [
    (("ssh", "oe_core", "sshd_config"), ("ssh", "oe_core", "sshd-T_effective.txt")),
    (("linux", "debian12", "sshd_config"), ("ssh", "debian12_default", "sshd-T_effective.txt")),
])
def test_config_evaluation_agrees_with_sshd_t(shared_dir: Path, config, effective) -> None:
    """Without root (no sshd -T), the evaluated sshd_config gives what OpenSSH 9.2 says."""
    issues = Issues()
    evaluated = sshd.sshd_facts(sshd.parse_sshd_config(
        real(shared_dir, *config), "", "OpenSSH_9.2p1", issues))
    truth = sshd.sshd_facts(sshd.parse_sshd_t(real(shared_dir, *effective)))
    assert {k: evaluated[k] for k in SSHD_KEYS} == {k: truth[k] for k in SSHD_KEYS}
    assert issues.items == []


def test_match_blocks_and_includes(shared_dir: Path) -> None:
    """Debian 12's sshd_config (Include first) plus a drop-in and a Match block."""
    dropin = ("PasswordAuthentication no\nPermitRootLogin no\n"
              "Match Address 10.20.0.0/16\n    PasswordAuthentication yes\n")
    config = sshd.parse_sshd_config(real(shared_dir, "linux", "debian12", "sshd_config"),
                                    dropin)
    facts = sshd.sshd_facts(config)
    assert facts["sshd.permit_root_login"] == "no"  # the drop-in is read first: it wins
    assert facts["sshd.password_authentication"] is True  # for 10.20/16 it is on
    assert facts["sshd.x11_forwarding"] is True  # Debian's main file


def test_sshd_t_refused_falls_back_to_the_config(shared_dir: Path) -> None:
    out = outputs({"sshd -T": None, "cat /etc/ssh/sshd_config":
                   real(shared_dir, "ssh", "oe_core", "sshd_config"),
                   "cat /etc/ssh/sshd_config.d/*.conf": None})
    out.results["sshd -T"] = CommandResult("sshd -T", b"", b"sshd: no hostkeys available "
                                           b"-- exiting.\n", 1, False, False)
    facts = _sshd(out, "SSH-2.0-OpenSSH_9.2p1")
    assert facts["sshd.kbd_interactive_authentication"] is True
    assert facts["sshd.client_alive_interval"] == 15


def test_dropbear_defaults_and_flags() -> None:
    """Debian's real /etc/default/dropbear (all commented): Dropbear's own defaults."""
    text = (LINUX / "debian12_dropbear_default").read_text()
    out = outputs({"sshd -T": None, "cat /etc/default/dropbear": text})
    facts = _sshd(out, "SSH-2.0-dropbear_2022.83")
    assert facts["sshd.permit_root_login"] == "yes"
    assert facts["sshd.password_authentication"] is True
    assert facts["sshd.kbd_interactive_authentication"] is False
    hardened = sshd.dropbear_facts(text + '\nDROPBEAR_EXTRA_ARGS="-s -w -p 2222"\n')
    assert hardened["sshd.permit_root_login"] == "no"
    assert hardened["sshd.password_authentication"] is False


# --- logging: one bad line, syslog-ng, busybox, nothing found -------------------------------

def test_rsyslog_bad_port_keeps_the_host_and_the_rest(shared_dir: Path) -> None:
    text = real(shared_dir, "linux", "debian12", "rsyslog.conf") + \
        "*.* @@loghost.plant:sixfivefourone\nauth.* @10.1.2.3:514\n"
    with pytest.raises(ParseError):
        logparse.parse_rsyslog(text)  # strict
    issues = Issues()
    targets = logparse.parse_rsyslog(text, issues)
    assert targets == [
        {"host": "loghost.plant", "port": None, "protocol": "tcp", "tls": False},
        {"host": "10.1.2.3", "port": 514, "protocol": "udp", "tls": False}]
    assert issues.items[0][1] == "*.* @@loghost.plant:sixfivefourone"
    out = outputs({**dict.fromkeys(SYSLOG_FILES), "cat /etc/rsyslog.conf": text})
    out.group(["logging.remote_targets", "logging.remote_enabled", "logging.remote_tls"],
              lambda: _remote_logging(out))
    assert out.rec.facts["logging.remote_enabled"].value is True
    skipped = [e for e in out.rec.evidence if "skipped" in e.request]
    assert skipped and skipped[0].excerpt == "*.* @@loghost.plant:sixfivefourone"
    assert skipped[0].id in out.rec.facts["logging.remote_targets"].evidence


def test_busybox_syslogd_of_yocto() -> None:
    text = (LINUX / "oe-core_syslog-startup.conf").read_text()
    assert logparse.parse_busybox_syslog(text) == []  # DESTINATION=buffer: local only
    remote = text.replace("DESTINATION=buffer", "DESTINATION=remote")
    assert logparse.parse_busybox_syslog(remote) == [
        {"host": "loghost", "port": 514, "protocol": "udp", "tls": False}]


def test_syslog_ng_destinations_in_use() -> None:
    """syslog-ng syntax as its administration guide documents network()/syslog()."""
    text = '''@version: 3.38
source s_src { system(); internal(); };
destination d_local { file("/var/log/messages"); };
destination d_siem { network("10.0.0.5" port(6514) transport("tls")
    tls(ca-dir("/etc/syslog-ng/ca.d"))); };
destination d_unused { network("10.9.9.9"); };  # defined, never used
destination d_old { udp("loghost" port(514)); };
log { source(s_src); destination(d_local); destination(d_siem); };
log { source(s_src); destination(d_old); };
'''
    assert logparse.parse_syslog_ng(text) == [
        {"host": "10.0.0.5", "port": 6514, "protocol": "tcp", "tls": True},
        {"host": "loghost", "port": 514, "protocol": "udp", "tls": False}]


def test_no_syslog_configuration_is_unknown_not_empty() -> None:
    facts = _remote_logging(outputs(dict.fromkeys(SYSLOG_FILES)))
    assert isinstance(facts["logging.remote_enabled"], Unknown)
    assert "no syslog configuration found" in facts["logging.remote_enabled"].reason


# --- time: ntpsec, unknown when nothing is configured ---------------------------------------

TIME_FILES = ["cat /etc/chrony/chrony.conf", "cat /etc/ntp.conf", "cat /etc/ntpsec/ntp.conf",
              "cat /etc/systemd/timesyncd.conf"]


def test_ntpsec_default_of_debian() -> None:
    files = dict.fromkeys(TIME_FILES)
    files["cat /etc/ntpsec/ntp.conf"] = (LINUX / "debian12_ntpsec_ntp.conf").read_text()
    facts = _ntp_sources(outputs(files))
    assert facts["time.ntp_sources"] == [f"{n}.debian.pool.ntp.org" for n in range(4)]
    assert timesync.parse_ntp_conf_sources("server 127.127.1.0\nserver 10.0.0.1 iburst\n") \
        == ["10.0.0.1"]  # the local clock driver is no network source


def test_no_time_configuration_is_unknown_not_empty(shared_dir: Path) -> None:
    facts = _ntp_sources(outputs(dict.fromkeys(TIME_FILES)))
    assert isinstance(facts["time.ntp_sources"], Unknown)
    files = dict.fromkeys(TIME_FILES)
    files["cat /etc/systemd/timesyncd.conf"] = "[Time]\n#NTP=\n#FallbackNTP=\n"
    assert "FallbackNTP" in _ntp_sources(outputs(files))["time.ntp_sources"].reason
    files["cat /etc/chrony/chrony.conf"] = real(shared_dir, "linux", "debian12", "chrony.conf")
    facts = _ntp_sources(outputs(files))
    assert facts["time.ntp_sources"] == ["2.debian.pool.ntp.org"]
    assert facts[ISSUES]["cat /etc/chrony/chrony.conf"].items == []


# --- IOS: release defaults and the version line ---------------------------------------------

def _without_vty_transport(text: str) -> str:
    return "\n".join(line for line in text.splitlines()
                     if not line.strip().startswith("transport input"))


def test_ios12_vty_without_transport_accepts_telnet(shared_dir: Path) -> None:
    """ciscoconfparse's real IOS 12.4 config with its vty 'transport input' removed."""
    text = _without_vty_transport(real(shared_dir, "cisco", "ciscoconfparse_sample_01.ios"))
    blocks = ios.parse_running_config(text)
    assert ios.config_release(blocks) == "12.4"
    assert ios.ios_config_facts(blocks)["mgmt.telnet_enabled"] is True
    assert ios.ios_config_facts(blocks, "12.4(15)T")["mgmt.telnet_enabled"] is True
    later = ios.ios_config_facts(blocks, "15.4(3)M")["mgmt.telnet_enabled"]
    assert isinstance(later, Unknown) and "15.4(3)M" in later.reason


def test_firmware_from_the_config_version_line_when_show_version_fails(shared_dir: Path):
    text = real(shared_dir, "cisco", "ciscoconfparse_sample_08.ios")
    results = {"show version": "% Invalid input detected at '^' marker.\n",
               "show running-config": text}
    out = outputs(results, personality="cisco_ios")
    collect_ios(out)
    facts = {k: v.value for k, v in out.rec.facts.items()}
    assert facts["identity.firmware_version"] == "15.4" and facts["identity.vendor"] == "Cisco"
    assert facts["mgmt.telnet_enabled"] is True


def test_one_bad_config_line_is_skipped(shared_dir: Path) -> None:
    text = real(shared_dir, "cisco", "ciscoconfparse_sample_01.ios").replace(
        "username ddclient", "username ddclient privilege high")
    issues = Issues()
    facts = ios.ios_config_facts(ios.parse_running_config(text), None, issues)
    assert facts["auth.local_users"] == []  # that line only
    assert facts["logging.hosts"] == ["172.16.1.5", "172.16.1.7"]
    assert "privilege 'high'" in issues.items[0][2]


async def test_yocto_panel_over_the_wire(tmp_path, monkeypatch) -> None:
    """Dropbear, busybox syslogd and ntpsec read through the simulator and the probe."""
    from ssh_helpers import PASSWORD, PASSWORD_VAR, credentials, only_allowlisted, probe, simulator

    monkeypatch.setenv(PASSWORD_VAR, PASSWORD)
    async with simulator("hmi-yocto") as device:
        obs = await probe(device.port, tmp_path / "kh", **credentials("hmi-yocto"))
        assert only_allowlisted(device, "linux")
    facts = {k: v.value for k, v in obs.facts.items()}
    assert facts["ssh.banner"].startswith("SSH-2.0-dropbear")
    assert facts["sshd.permit_root_login"] == "yes" and facts["sshd.password_authentication"]
    assert facts["logging.remote_targets"] == [
        {"host": "10.10.20.5", "port": 514, "protocol": "udp", "tls": False}]
    assert facts["time.ntp_sources"][0] == "0.debian.pool.ntp.org"
    assert facts["os.name"].startswith("Poky")
    assert "command not found" in obs.unknown["services.listening"]
