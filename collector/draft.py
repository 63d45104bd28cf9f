"""A draft inventory from a discovery: kind, vendor, model and endpoints per device.

The draft is meant to be audited as it is (``otaudit collector run``) and then refined by
hand: zones come from subnet rules (or one zone per /24), every asset carries the
credential *references* discovery was given (never a secret), and what discovery saw but
cannot audit (telnet, HTTP, HTTPS listening) is kept as tags.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from otaudit.collector.discover import (
    KIND_PRIORITY,
    POSTURE_SERVICES,
    DiscoveryResult,
    HostFound,
)
from otaudit.errors import InputError
from otaudit.observation import AssetKind
from otaudit.probes import probe_class

S7_FAMILIES = ("s7-1500", "s7-1200", "s7-400", "s7-300")
# SSH server identification -> personality of the allowlisted commands (probes/ssh).
SSH_PERSONALITIES = ((re.compile(r"^Cisco-"), "cisco_ios", AssetKind.SWITCH, "Cisco"),
                     (re.compile(r"HiOS", re.I), "hirschmann_hios", AssetKind.SWITCH,
                      "Hirschmann"),
                     (re.compile(r"^OpenSSH_for_Windows", re.I), "windows", AssetKind.HMI,
                      "Microsoft"),
                     (re.compile(r"^(OpenSSH|dropbear)", re.I), "linux", AssetKind.HMI, None))
# OpenSSH builds of distributions name them in the comment: "OpenSSH_9.2p1 Debian-2+deb12u2"
SSH_DISTRIBUTIONS = re.compile(r"\b(Debian|Ubuntu|Raspbian|FreeBSD)\b")


@dataclass(frozen=True)
class ZoneRule:
    network: Any  # ipaddress network
    zone: str
    sl_t: int

    @classmethod
    def parse(cls, text: str, default_sl: int) -> ZoneRule:
        """``10.1.2.0/24=cell-1`` or ``10.1.2.0/24=cell-1:3`` (SL-T 3)."""
        network_text, _, rest = text.partition("=")
        zone, _, level = rest.partition(":")
        try:
            network = ipaddress.ip_network(network_text.strip(), strict=False)
            sl_t = int(level) if level else default_sl
        except ValueError:
            raise InputError("--zone", [f"{text!r}: expected CIDR=ZONE or CIDR=ZONE:SL"]
                             ) from None
        if not zone or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", zone):
            raise InputError("--zone", [f"{text!r}: the zone id must be letters, digits, "
                                        "'.', '_' or '-'"])
        if not 1 <= sl_t <= 4:
            raise InputError("--zone", [f"{text!r}: a target security level is 1 to 4"])
        return cls(network, zone, sl_t)


def draft_inventory(result: DiscoveryResult, *, site: str, zone_rules: Iterable[ZoneRule] = (),
                    default_sl: int = 2, ssh_credentials: Mapping[str, Any] | None = None
                    ) -> dict[str, Any]:
    """The inventory (as YAML-ready data) of every host that answered."""
    rules = list(zone_rules)
    zones: dict[str, dict[str, Any]] = {}
    assets = []
    for host in result.found:
        zone_id, sl_t = _zone_of(host.host, rules, default_sl)
        zones.setdefault(zone_id, {"id": zone_id, "sl_t": sl_t})
        asset = draft_asset(host, zone_id, ssh_credentials or {})
        if asset is not None:
            assets.append(asset)
    return {"site": site, "zones": list(zones.values()), "assets": assets}


def _zone_of(host: str, rules: list[ZoneRule], default_sl: int) -> tuple[str, int]:
    address = ipaddress.ip_address(host)
    for rule in rules:
        if address in rule.network:
            return rule.zone, rule.sl_t
    prefix = 24 if address.version == 4 else 64
    network = ipaddress.ip_network(f"{host}/{prefix}", strict=False)
    label = str(network.network_address).replace(".", "-").replace(":", "-").strip("-")
    return f"net-{label}", default_sl


def draft_asset(host: HostFound, zone: str, ssh_credentials: Mapping[str, Any]
                ) -> dict[str, Any] | None:
    """One asset: endpoints for the protocols found, kind by priority, identity as names."""
    endpoints: dict[str, dict[str, Any]] = {}
    kinds: list[AssetKind] = []
    ssh_vendor = None
    tags = [f"{service}-open" for service in sorted(host.services) if service in
            POSTURE_SERVICES]
    for protocol, port in host.services.items():
        if protocol in POSTURE_SERVICES:
            continue
        cls = probe_class(protocol)
        endpoint: dict[str, Any] = {"host": host.host}
        if port != cls.default_port:
            endpoint["port"] = port
        kind = cls.default_kind
        obs = host.observations.get(protocol)
        if obs is not None and obs.status.value != "ok":
            tags.append(f"{protocol}-identify-{obs.status.value}")
        if protocol == "s7":
            family = _s7_family(host)
            if family:
                endpoint["family"] = family
        elif protocol == "snmp" and host.snmp_credential:
            endpoint.update(copy.deepcopy(host.snmp_credential))
        elif protocol == "ssh":
            kind, ssh_vendor = _ssh_endpoint(host, endpoint, ssh_credentials, tags)
        endpoints[protocol] = endpoint
        kinds.append(kind)
    if not endpoints:
        return None
    kind = min(kinds, key=lambda k: KIND_PRIORITY.index(k) if k in KIND_PRIORITY else 99)
    vendor = host.fact("identity.vendor") or ssh_vendor
    model = host.fact("identity.model") or host.fact("identity.product")
    label = " ".join(str(v) for v in (vendor, model) if v) or "identity unknown"
    asset: dict[str, Any] = {
        "id": f"{kind.value}-{host.host.replace('.', '-').replace(':', '-')}",
        "name": host.fact("identity.name") or label, "kind": kind.value, "zone": zone}
    if vendor:
        asset["vendor"] = str(vendor)
    if model:
        asset["model"] = str(model)
    asset["endpoints"] = endpoints
    if tags:
        asset["tags"] = tags
    return asset


def _s7_family(host: HostFound) -> str | None:
    text = " ".join(str(host.fact(p) or "") for p in ("identity.product", "identity.model",
                                                       "s7.module_type"))
    return next((f for f in S7_FAMILIES if f.removeprefix("s7-") in text), None)


def _ssh_endpoint(host: HostFound, endpoint: dict[str, Any], credentials: Mapping[str, Any],
                  tags: list[str]) -> tuple[AssetKind, str | None]:
    """Personality (and a vendor) from the server's identification; legacy algorithms
    only if the server offers nothing else."""
    from otaudit.probes.ssh.algorithms import LEGACY, MODERN

    banner = str(host.fact("ssh.banner") or "")
    software = banner.split("-", 2)[2] if banner.count("-") >= 2 else banner
    personality, kind, vendor = next(((p, k, v) for rx, p, k, v in SSH_PERSONALITIES
                                      if rx.search(software)), (None, AssetKind.HMI, None))
    distribution = SSH_DISTRIBUTIONS.search(software)
    vendor = vendor or (distribution.group(1) if distribution else None)
    offer = [host.fact(p) or [] for p in ("ssh.kex_algorithms", "ssh.host_key_algorithms",
                                          "ssh.ciphers", "ssh.macs")]
    if all(offer) and not MODERN.negotiable(*offer) and LEGACY.negotiable(*offer):
        endpoint["allow_legacy"] = True
        tags.append("ssh-legacy-only")
    if personality is None:
        tags.append("ssh-personality-unknown")
    elif credentials:
        endpoint.update(copy.deepcopy(dict(credentials)))
        endpoint["personality"] = personality
    return kind, vendor


def dump_draft(draft: Mapping[str, Any], header: str = "") -> str:
    """The draft as YAML text (block style, in the order written)."""
    import io

    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.default_flow_style = False
    out = io.StringIO()
    if header:
        out.write("".join(f"# {line}\n" if line else "#\n" for line in header.splitlines()))
    yaml.dump(dict(draft), out)
    return out.getvalue()


@dataclass
class MergeReport:
    text: str
    assets_added: list[str]
    endpoints_added: list[str]  # "asset-id: protocol"
    zones_added: list[str]


def merge_draft(existing: str, draft: Mapping[str, Any], source: str = "inventory"
                ) -> MergeReport:
    """Add the draft's new zones, assets and endpoints to an inventory the user wrote,
    keeping every value and comment of it: an asset is the same when one of its endpoints
    has the host of a draft asset; only protocols it lacks are added to it."""
    import io

    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    yaml = YAML()  # round trip: comments, order and quoting stay as written
    try:
        data = yaml.load(existing)
    except YAMLError as exc:
        raise InputError(source, [f"not valid YAML: {exc}"]) from None
    if not isinstance(data, dict):
        raise InputError(source, ["expected a mapping with 'site', 'zones' and 'assets'"])
    zones = data.setdefault("zones", [])
    assets = data.setdefault("assets", [])
    by_host: dict[str, Any] = {}
    for asset in assets:
        for endpoint in (asset.get("endpoints") or {}).values():
            if isinstance(endpoint, dict) and endpoint.get("host"):
                by_host.setdefault(str(endpoint["host"]), asset)
    known_zones = {z.get("id") for z in zones if isinstance(z, dict)}
    report = MergeReport("", [], [], [])
    for asset in draft["assets"]:
        hosts = {e["host"] for e in asset["endpoints"].values()}
        mine = next((by_host[h] for h in hosts if h in by_host), None)
        if mine is None:
            if asset["zone"] not in known_zones:
                zone = next(z for z in draft["zones"] if z["id"] == asset["zone"])
                zones.append(dict(zone))
                known_zones.add(zone["id"])
                report.zones_added.append(zone["id"])
            assets.append(dict(asset))
            report.assets_added.append(asset["id"])
            continue
        endpoints = mine.setdefault("endpoints", {})
        for protocol, endpoint in asset["endpoints"].items():
            if protocol not in endpoints:
                endpoints[protocol] = dict(endpoint)
                report.endpoints_added.append(f"{mine.get('id')}: {protocol}")
    out = io.StringIO()
    yaml.dump(data, out)
    report.text = out.getvalue()
    return report
