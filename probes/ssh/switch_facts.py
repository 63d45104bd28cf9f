"""Switch facts (Cisco IOS style and Hirschmann HiOS) from the allowlisted outputs."""

from __future__ import annotations

from otaudit.probes.ssh.facts import SWITCH
from otaudit.probes.ssh.outputs import Outputs
from otaudit.probes.ssh.parse import hios, ios
from otaudit.probes.ssh.parse.common import ISSUES, Issues, Unknown

IDENTITY_PATHS = ["identity.vendor", "identity.model", "identity.firmware_version",
                  "identity.serial", "identity.name"]


def _ios_identity(out: Outputs) -> dict[str, object]:
    version = ios.parse_show_version(out.text("show version"))
    return {"identity.vendor": "Cisco", "identity.model": version.get("model"),
            "identity.firmware_version": version["version"],
            "identity.serial": version.get("serial"), "identity.name": version.get("hostname")}


def _ios_config(out: Outputs, release: str | None) -> dict[str, object]:
    blocks = ios.parse_running_config(out.text("show running-config"))
    issues = Issues()
    facts = ios.ios_config_facts(blocks, release, issues)
    if release is None:
        if ios.config_release(blocks):
            # show version failed: the config's 'version 12.2' line is the release we know
            facts["identity.firmware_version"] = ios.config_release(blocks)
            facts["identity.vendor"] = "Cisco"
        else:
            prior = out.rec.unknown.get("identity.firmware_version", "show version unreadable")
            facts["identity.firmware_version"] = Unknown(
                f"{prior}; the running-config has no version line either")
    return {**facts, ISSUES: {"show running-config": issues}}


def collect_ios(out: Outputs) -> None:
    out.group(IDENTITY_PATHS, lambda: _ios_identity(out))
    fact = out.rec.facts.get("identity.firmware_version")
    release = str(fact.value) if fact else None
    paths = list(SWITCH)
    for path in ("identity.name", "identity.firmware_version", "identity.vendor"):
        if path not in out.rec.facts:
            paths.append(path)
    out.group(paths, lambda: _ios_config(out, release))


def collect_hios(out: Outputs, ssh_proto_version: str | None) -> None:
    out.group([*IDENTITY_PATHS, "identity.product", "identity.hardware_version"],
              lambda: hios.system_info_identity(hios.parse_system_info(
                  out.text("show system info"))))
    paths = list(SWITCH)
    if "identity.name" not in out.rec.facts:
        paths.append("identity.name")
    def config() -> dict[str, object]:
        issues = Issues()
        facts = hios.hios_config_facts(hios.parse_script(
            out.text("show running-config script all")), ssh_proto_version, issues)
        return {**facts, ISSUES: {"show running-config script all": issues}}

    out.group(paths, config)
