"""Fact families and the identity family every probe shares.

A fact path is ``family.name`` (``identity.firmware_version``, ``s7.protection_level``).
Each probe declares the facts it can produce in its own ``facts.py`` as a mapping of
path → ``FactSpec``; the catalogue is the identity family plus every probe's
declaration (see ``otaudit.probes.fact_catalogue``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FactType = Literal["str", "int", "float", "bool", "list", "dict", "version", "enum"]


@dataclass(frozen=True)
class FactSpec:
    type: FactType
    description: str
    values: tuple[str, ...] = ()  # for enums


IDENTITY: dict[str, FactSpec] = {
    "identity.vendor": FactSpec("str", "Vendor as the device names itself (normalised spelling)"),
    "identity.product": FactSpec("str", "Product family or product name"),
    "identity.model": FactSpec("str", "Model name"),
    "identity.order_code": FactSpec("str", "Vendor order number / MLFB, normalised"),
    "identity.firmware_version": FactSpec("version", "Firmware version as the vendor writes it"),
    "identity.hardware_version": FactSpec("str", "Hardware revision"),
    "identity.serial": FactSpec("str", "Serial number"),
    "identity.name": FactSpec("str", "Name configured on the device (station/sysName/hostname)"),
    "identity.os": FactSpec("str", "Operating system name and version (hosts)"),
}


# Facts the server derives from the inventory (declared, not probed): one fact set per zone,
# as the pseudo-asset ``zone:<id>`` of kind ``zone`` probed by ``inventory``.
DECLARED: dict[str, FactSpec] = {
    "conduit.links": FactSpec(
        "list", "Conduits of the zone {id, peer, peer_type, peer_trust, enforced, enforced_by, "
        "inbound, outbound}; inbound/outbound: protocols allowed into/out of the zone"),
}
