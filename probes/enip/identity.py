"""What an Identity object means: vendor name, product family, catalog number, firmware.

The vendor table (``vendors.yaml``) and the product rules (``products.yaml``) are data;
this module only applies them. Pure functions, no I/O beyond reading those two files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from otaudit.probes.enip.parse import Identity

HERE = Path(__file__).parent
DEFAULT_REVISION_FORMAT = "{major}.{minor}"
# CIP device profiles (Identity attribute 2) common on plant networks
DEVICE_TYPES = {
    0x00: "Generic Device (deprecated)", 0x02: "AC Drive", 0x03: "Motor Overload",
    0x07: "General Purpose Discrete I/O", 0x0C: "Communications Adapter",
    0x0E: "Programmable Logic Controller", 0x10: "Position Controller", 0x13: "DC Drive",
    0x16: "Motor Starter", 0x18: "Human-Machine Interface", 0x22: "Encoder",
    0x23: "Safety Discrete I/O Device", 0x25: "CIP Motion Drive",
    0x2B: "Generic Device (keyable)", 0x2C: "Managed Ethernet Switch",
}


@dataclass(frozen=True)
class Vendor:
    id: int
    name: str
    revision_format: str = DEFAULT_REVISION_FORMAT


@dataclass(frozen=True)
class ProductRule:
    pattern: re.Pattern[str]
    product: str | None


@cache
def vendors() -> dict[int, Vendor]:
    data = yaml.safe_load((HERE / "vendors.yaml").read_text(encoding="utf-8"))
    return {int(vid): Vendor(int(vid), entry["name"],
                             entry.get("revision_format", DEFAULT_REVISION_FORMAT))
            for vid, entry in data["vendors"].items()}


@cache
def product_rules() -> dict[int, tuple[ProductRule, ...]]:
    data: dict[str, Any] = yaml.safe_load((HERE / "products.yaml").read_text(encoding="utf-8"))
    return {int(vid): tuple(ProductRule(re.compile(r["pattern"]), r.get("product"))
                            for r in rules)
            for vid, rules in data["vendors"].items()}


def device_type_name(device_type: int) -> str:
    return DEVICE_TYPES.get(device_type, f"vendor specific or unlisted ({device_type})")


def firmware_version(ident: Identity) -> str:
    """The revision as the vendor writes its firmware (Rockwell: ``33.011``)."""
    vendor = vendors().get(ident.vendor_id)
    fmt = vendor.revision_format if vendor else DEFAULT_REVISION_FORMAT
    return fmt.format(major=ident.major, minor=ident.minor)


@dataclass(frozen=True)
class ProductInfo:
    order_code: str | None = None
    series: str | None = None
    product: str | None = None


def product_info(ident: Identity) -> ProductInfo:
    """Catalog number, series and family from the product name (first matching rule)."""
    name = " ".join(ident.product_name.split())
    for rule in product_rules().get(ident.vendor_id, ()):
        match = rule.pattern.match(name)
        if match:
            groups = match.groupdict()
            return ProductInfo(groups.get("order"), groups.get("series"), rule.product)
    return ProductInfo()


def identity_facts(ident: Identity) -> tuple[dict[str, str], dict[str, str]]:
    """``identity.*`` facts the Identity object gives, and the unknown ones with reasons."""
    facts: dict[str, str] = {}
    unknown: dict[str, str] = {}
    vendor = vendors().get(ident.vendor_id)
    if vendor:
        facts["identity.vendor"] = vendor.name
    else:
        unknown["identity.vendor"] = (f"vendor id {ident.vendor_id} is not in the vendor "
                                      f"table (probes/enip/vendors.yaml)")
    name = " ".join(ident.product_name.split())
    if name:
        facts["identity.model"] = name
    else:
        unknown["identity.model"] = "the device reports an empty product name"
    info = product_info(ident)
    if info.order_code:
        facts["identity.order_code"] = info.order_code
    else:
        unknown["identity.order_code"] = f"no catalog number known in product name {name!r}"
    if info.product:
        facts["identity.product"] = info.product
    else:
        unknown["identity.product"] = f"no product family known for {name!r}"
    if info.series:
        facts["identity.hardware_version"] = f"Series {info.series}"
    else:
        unknown["identity.hardware_version"] = "the product name carries no series letter"
    facts["identity.firmware_version"] = firmware_version(ident)
    facts["identity.serial"] = f"0x{ident.serial:08x}"
    return facts, unknown
