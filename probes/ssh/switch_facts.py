"""Switch facts (Cisco IOS style and Hirschmann HiOS) from the allowlisted outputs."""

from __future__ import annotations

from otaudit.probes.ssh.facts import SWITCH
from otaudit.probes.ssh.outputs import Outputs
from otaudit.probes.ssh.parse import hios, ios

IDENTITY_PATHS = ["identity.vendor", "identity.model", "identity.firmware_version",
                  "identity.serial", "identity.name"]


def _ios_identity(out: Outputs) -> dict[str, object]:
    version = ios.parse_show_version(out.text("show version"))
    return {"identity.vendor": "Cisco", "identity.model": version.get("model"),
            "identity.firmware_version": version["version"],
            "identity.serial": version.get("serial"), "identity.name": version.get("hostname")}


def collect_ios(out: Outputs) -> None:
    out.group(IDENTITY_PATHS, lambda: _ios_identity(out))
    paths = list(SWITCH)
    if "identity.name" not in out.rec.facts:
        paths.append("identity.name")
    out.group(paths, lambda: ios.ios_config_facts(
        ios.parse_running_config(out.text("show running-config"))))


def collect_hios(out: Outputs, ssh_proto_version: str | None) -> None:
    out.group([*IDENTITY_PATHS, "identity.product", "identity.hardware_version"],
              lambda: hios.system_info_identity(hios.parse_system_info(
                  out.text("show system info"))))
    paths = list(SWITCH)
    if "identity.name" not in out.rec.facts:
        paths.append("identity.name")
    out.group(paths, lambda: hios.hios_config_facts(hios.parse_script(
        out.text("show running-config script all")), ssh_proto_version))
