"""Which device sits where in a simulated plant of N devices (deterministic for a seed).

The mix follows ``CATALOGUE``: Modbus, S7 and EtherNet/IP PLCs, SNMP switches, SSH HMI
hosts and switch CLIs, OPC UA servers, weak and hardened, plus a few misbehaving devices
(offline, silent, slow, garbage). Counts are exact (largest remainder over the weights),
the order is shuffled with the seed. Device ``i`` gets the loopback address
``127.0.(1 + i // 254).(1 + i % 254)`` (the first subnet can be moved): never 127.0.0.x,
never outside 127.0.0.0/8.
"""

from __future__ import annotations

import copy
import ipaddress
import os
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MAX_DEVICES = 10_000
HOSTS_PER_SUBNET = 254
STANDARD_PORTS = {"modbus": 502, "s7": 102, "snmp": 161, "ssh": 22, "enip": 44818, "opcua": 4840}
HIGH_PORTS = {"modbus": 5020, "s7": 10102, "snmp": 10161, "ssh": 10022, "enip": 44818,
              "opcua": 4840}  # EtherNet/IP and OPC UA ports need no privilege
UDP_PROTOCOLS = frozenset({"snmp"})
DEVICES_PER_ZONE = 50

# Demo-only credentials of the bundled profiles; the inventory names only the variables.
PLANT_SECRETS = {
    "PLANT_SSH_PASSWORD": "otaudit-demo",
    "PLANT_SNMP_COMMUNITY_X204": "plant-mon-7Kq2",
    "PLANT_SNMP_COMMUNITY_RS20": "public",
    "PLANT_SNMP_V3_AUTH": "xc208-auth-Vb81",
    "PLANT_SNMP_V3_PRIV": "xc208-priv-Qe42",
}

# What runs at a device's address: a bundled profile, or a stand-in of the fleet itself.
PROFILE, SILENT, GARBAGE, OFFLINE = "profile", "silent", "garbage", "offline"


@dataclass(frozen=True)
class Variant:
    """One kind of device in the catalogue; ``weight`` is per 1,000 devices."""

    name: str
    kind: str  # plc | switch | hmi (inventory asset kind)
    protocol: str
    weight: int
    label: str
    runs: str = PROFILE
    profile: str | None = None
    sim_options: dict[str, Any] = field(default_factory=dict)
    endpoint: dict[str, Any] = field(default_factory=dict)

    @property
    def faulty(self) -> bool:
        return self.runs != PROFILE or self.sim_options.get("behaviour", "normal") != "normal"


def _ssh(personality: str, **extra: Any) -> dict[str, Any]:
    return {"user": "auditor", "password": {"env": "PLANT_SSH_PASSWORD"},
            "personality": personality, **extra}


_X204 = {"version": "v2c", "community": {"env": "PLANT_SNMP_COMMUNITY_X204"}}
_RS20 = {"version": "v2c", "community": {"env": "PLANT_SNMP_COMMUNITY_RS20"}}
_XC208 = {"version": "v3", "v3_user": "otaudit-ro", "v3_auth_protocol": "SHA",
          "v3_auth_key": {"env": "PLANT_SNMP_V3_AUTH"}, "v3_priv_protocol": "AES-128",
          "v3_priv_key": {"env": "PLANT_SNMP_V3_PRIV"}}

CATALOGUE: tuple[Variant, ...] = (
    # Modbus/TCP PLCs (26.5 %)
    Variant("modbus-m340", "plc", "modbus", 100, "Modicon M340", profile="schneider-m340",
            endpoint={"unit": 1}),
    Variant("modbus-m221", "plc", "modbus", 85, "Modicon M221", profile="schneider-m221",
            endpoint={"unit": 1}),
    Variant("modbus-gateway", "plc", "modbus", 50, "Modbus serial gateway",
            profile="gateway-no-devid", endpoint={"unit": 1}),
    Variant("modbus-slow", "plc", "modbus", 8, "Modicon M221 (slow)", profile="schneider-m221",
            sim_options={"behaviour": "slow", "delay": 1.0}, endpoint={"unit": 1}),
    Variant("modbus-garbage", "plc", "modbus", 6, "Modicon M340 (garbage device id)",
            profile="schneider-m340", sim_options={"behaviour": "garbage_devid"},
            endpoint={"unit": 1}),
    Variant("modbus-drops", "plc", "modbus", 6, "Modicon M221 (drops connection)",
            profile="schneider-m221", sim_options={"behaviour": "close_on_devid"},
            endpoint={"unit": 1}),
    # S7 PLCs (23 %)
    Variant("s7-1200-weak", "plc", "s7", 70, "S7-1200 CPU 1214C", profile="s7-1200-weak",
            endpoint={"family": "s7-1200"}),
    Variant("s7-1500-strong", "plc", "s7", 50, "S7-1500 CPU 1516-3",
            profile="s7-1500-strong", endpoint={"family": "s7-1500"}),
    Variant("s7-300-weak", "plc", "s7", 50, "S7-300 CPU 315-2", profile="s7-300-weak",
            endpoint={"family": "s7-300"}),
    Variant("s7-300-protected", "plc", "s7", 40, "S7-300 CPU 317-2",
            profile="s7-300-write-protected", endpoint={"family": "s7-300"}),
    Variant("s7-1200-refusing", "plc", "s7", 12, "S7-1200 (refuses S7comm)",
            profile="s7-1200-refusing", endpoint={"family": "s7-1200"}),
    Variant("s7-garbage", "plc", "s7", 8, "S7 PLC (garbage replies)", runs=GARBAGE,
            endpoint={"family": "s7-1200"}),
    # SNMP switches (19 %)
    Variant("snmp-x204-weak", "switch", "snmp", 70, "SCALANCE X204IRT",
            profile="scalance-x204irt-weak", endpoint=_X204),
    Variant("snmp-rs20-weak", "switch", "snmp", 60, "Hirschmann RS20",
            profile="hirschmann-rs20-weak", endpoint=_RS20),
    Variant("snmp-xc208-hardened", "switch", "snmp", 52, "SCALANCE XC208 (SNMPv3)",
            profile="scalance-xc208-hardened", endpoint=_XC208),
    Variant("snmp-silent", "switch", "snmp", 8, "Switch (SNMP never answers)", runs=SILENT,
            endpoint=_X204),
    # SSH HMI hosts and switch CLIs (23 %)
    Variant("ssh-hmi-weak", "hmi", "ssh", 60, "HMI PC (Debian 12)", profile="hmi-weak",
            endpoint=_ssh("linux")),
    Variant("ssh-hmi-hardened", "hmi", "ssh", 60, "HMI PC (Debian 12, hardened)",
            profile="hmi-hardened", endpoint=_ssh("linux")),
    Variant("ssh-switch-ios", "switch", "ssh", 40, "Cisco IE-4000 CLI", profile="switch-ios",
            endpoint=_ssh("cisco_ios")),
    Variant("ssh-switch-hios", "switch", "ssh", 35, "Hirschmann HiOS CLI",
            profile="switch-hios", endpoint=_ssh("hirschmann_hios")),
    Variant("ssh-legacy-ie3000", "switch", "ssh", 27, "Cisco IE-3000 CLI (legacy crypto)",
            profile="legacy-ie3000", endpoint=_ssh("cisco_ios", allow_legacy=True)),
    Variant("ssh-silent", "hmi", "ssh", 8, "HMI PC (SSH never answers)", runs=SILENT,
            endpoint=_ssh("linux")),
    # EtherNet/IP (Rockwell) PLCs (7.5 %); the CIP Security one serves TLS on 2221 at its
    # own address, where the probe looks by default
    Variant("enip-controllogix-5580", "plc", "enip", 30, "ControlLogix 5580",
            profile="controllogix-5580"),
    Variant("enip-compactlogix-5380", "plc", "enip", 20, "CompactLogix 5380",
            profile="compactlogix-5380"),
    Variant("enip-micro850", "plc", "enip", 15, "Micro850", profile="micro850"),
    Variant("enip-cip-security", "plc", "enip", 10, "CompactLogix 5380 (CIP Security)",
            profile="compactlogix-5380-cip-security", sim_options={"tls_port": 2221}),
    # OPC UA servers (1 %: an asyncua server needs ~40 MB and seconds to start)
    Variant("opcua-weak", "hmi", "opcua", 4, "HMI OPC UA server (weak)", profile="opcua-weak",
            endpoint={"read_build_info": True}),
    Variant("opcua-mixed", "hmi", "opcua", 3, "SCADA gateway OPC UA server (mixed)",
            profile="opcua-mixed", endpoint={"read_build_info": True, "path": "/gateway"}),
    Variant("opcua-hardened", "hmi", "opcua", 3, "OPC UA server (hardened)",
            profile="opcua-hardened", endpoint={"read_build_info": True}),
    # Offline: in the inventory, nothing listens (1 %)
    Variant("offline-modbus", "plc", "modbus", 4, "PLC (offline)", runs=OFFLINE,
            endpoint={"unit": 1}),
    Variant("offline-s7", "plc", "s7", 3, "S7 PLC (offline)", runs=OFFLINE,
            endpoint={"family": "s7-1500"}),
    Variant("offline-ssh", "hmi", "ssh", 3, "HMI PC (offline)", runs=OFFLINE,
            endpoint=_ssh("linux")),
)
VARIANTS = {v.name: v for v in CATALOGUE}
# One of each misbehaviour first when a plant is too small for the whole catalogue.
SMALL_PLANT_FAULTS = ("offline-modbus", "modbus-slow", "ssh-silent", "s7-garbage",
                      "modbus-garbage", "snmp-silent", "modbus-drops", "offline-s7",
                      "offline-ssh")
ZONE_LEVELS: tuple[int | dict[str, int], ...] = (
    1, 2, 2, 3, {"IAC": 3, "UC": 2, "SI": 2, "DC": 2, "RDF": 2, "TRE": 2, "RA": 2})


@dataclass
class DeviceSpec:
    """One device of the plant: where it listens and what the inventory says about it."""

    index: int
    id: str
    variant: str
    kind: str
    protocol: str
    zone: str
    host: str
    port: int  # requested port (0: any free port); the bound one once started
    runs: str
    profile: str | None = None
    sim_options: dict[str, Any] = field(default_factory=dict)
    endpoint: dict[str, Any] = field(default_factory=dict)
    name: str = ""

    @property
    def transport(self) -> str:
        return "udp" if self.protocol in UDP_PROTOCOLS else "tcp"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeviceSpec:
        return cls(**data)

    def asset(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "kind": self.kind, "zone": self.zone,
                "endpoints": {self.protocol: {"host": self.host, "port": self.port,
                                              **copy.deepcopy(self.endpoint)}}}


@dataclass
class PlantLayout:
    site: str
    seed: int
    zones: list[dict[str, Any]]
    devices: list[DeviceSpec]

    def inventory(self) -> dict[str, Any]:
        return {"site": self.site, "zones": [copy.deepcopy(z) for z in self.zones],
                "assets": [d.asset() for d in self.devices]}

    def env(self) -> dict[str, str]:
        """The credential variables the inventory refers to, with their demo values."""
        wanted = {ref["env"] for d in self.devices for ref in d.endpoint.values()
                  if isinstance(ref, dict) and "env" in ref}
        return {name: PLANT_SECRETS[name] for name in sorted(wanted)}

    def by_variant(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for d in self.devices:
            counts[d.variant] = counts.get(d.variant, 0) + 1
        return counts


def device_address(index: int, subnet: int = 1) -> str:
    """``127.0.x.y`` of device ``index``: x = subnet + index // 254 (>= 1), 1 <= y <= 254."""
    x = subnet + index // HOSTS_PER_SUBNET
    if not 0 <= index < MAX_DEVICES or subnet < 1 or x > 255:
        raise ValueError(f"device {index} does not fit 127.0.{subnet}.1 .. 127.0.255.254")
    host = f"127.0.{x}.{1 + index % HOSTS_PER_SUBNET}"
    assert ipaddress.ip_address(host).is_loopback
    return host


def small_plant_order(variants: list[Variant]) -> list[Variant]:
    """Variants in the order a plant smaller than the catalogue takes them: each
    protocol's commonest devices in turn, one misbehaving device after every three."""
    normal = sorted((v for v in variants if not v.faulty), key=lambda v: -v.weight)
    rank = {name: i for i, name in enumerate(SMALL_PLANT_FAULTS)}
    faulty = sorted((v for v in variants if v.faulty),
                    key=lambda v: rank.get(v.name, len(rank)))
    by_protocol: dict[str, list[Variant]] = {}
    for v in normal:
        by_protocol.setdefault(v.protocol, []).append(v)
    rounds = [v for depth in range(len(normal)) for group in by_protocol.values()
              if depth < len(group) for v in [group[depth]]]
    order: list[Variant] = []
    while rounds or faulty:
        order += rounds[:3]
        del rounds[:3]
        order += faulty[:1]
        del faulty[:1]
    return order


def allocate(n: int, variants: list[Variant]) -> dict[str, int]:
    """Exact counts per variant for ``n`` devices: largest remainder over the weights, each
    variant at least once when ``n`` allows it, else ``small_plant_order``."""
    if n < len(variants):
        chosen = [v.name for v in small_plant_order(variants)[:n]]
        return {v.name: chosen.count(v.name) for v in variants}
    total = sum(v.weight for v in variants)
    shares = {v.name: n * v.weight / total for v in variants}
    counts = {name: int(share) for name, share in shares.items()}
    by_remainder = sorted(shares, key=lambda k: (shares[k] - counts[k], k), reverse=True)
    for name in by_remainder[: n - sum(counts.values())]:
        counts[name] += 1
    for name in [k for k, c in counts.items() if c == 0]:
        donor = max(counts, key=lambda k: (counts[k], k))
        counts[donor] -= 1
        counts[name] += 1
    return counts


def default_port_mode() -> str:
    """``standard`` when this process may bind ports below 1024, else ``high``."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return "standard"
    try:
        first = int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    except (OSError, ValueError):
        return "high"
    return "standard" if first <= min(STANDARD_PORTS.values()) else "high"


def port_for(protocol: str, port_mode: str) -> int:
    """``standard`` (502/102/161/22/44818/4840), ``high`` (5020/10102/10161/10022, the
    same 44818/4840) or ``any`` (0)."""
    if port_mode == "standard":
        return STANDARD_PORTS[protocol]
    if port_mode == "high":
        return HIGH_PORTS[protocol]
    if port_mode == "any":
        return 0
    raise ValueError(f"port mode {port_mode!r}: standard, high or any")


def generate_layout(n: int, seed: int = 1, *, protocols: set[str] | None = None,
                    port_mode: str = "standard", faults: bool = True,
                    site: str | None = None, subnet: int = 1) -> PlantLayout:
    """The plant of ``n`` devices for ``seed`` (same arguments, same plant); addresses
    start at 127.0.``subnet``.1."""
    if not 1 <= n <= MAX_DEVICES:
        raise ValueError(f"--devices must be 1..{MAX_DEVICES}")
    variants = [v for v in CATALOGUE
                if (protocols is None or v.protocol in protocols) and (faults or not v.faulty)]
    if not variants:
        raise ValueError(f"no device variant for protocols {sorted(protocols or [])}")
    rng = random.Random(seed)
    counts = allocate(n, variants)
    names = [name for name in sorted(counts) for _ in range(counts[name])]
    rng.shuffle(names)
    zone_count = max(1, -(-n // DEVICES_PER_ZONE))
    zones = [{"id": f"cell-{z + 1:02d}", "name": f"Production cell {z + 1}",
              "sl_t": rng.choice(ZONE_LEVELS)} for z in range(zone_count)]
    prefix = {"plc": "plc", "switch": "sw", "hmi": "hmi"}
    devices = []
    for i, name in enumerate(names):
        v = VARIANTS[name]
        zone = zones[i // DEVICES_PER_ZONE]["id"]
        devices.append(DeviceSpec(
            index=i, id=f"{prefix[v.kind]}-{i + 1:04d}", variant=v.name, kind=v.kind,
            protocol=v.protocol, zone=zone, host=device_address(i, subnet),
            port=port_for(v.protocol, port_mode), runs=v.runs, profile=v.profile,
            sim_options=dict(v.sim_options), endpoint=dict(v.endpoint),
            name=f"{v.label}, {zone}"))
    return PlantLayout(site=site or f"fleet-{seed}", seed=seed, zones=zones, devices=devices)
