"""CIP device profile names and Identity records at their edges (issue 23: survivors of the
mutation slice of probes/enip/identity.py and parse.py)."""

from __future__ import annotations

import dataclasses

import pytest

from otaudit.probes.enip import identity as id_rules
from otaudit.probes.enip.parse import Identity, ListIdentityItem

# CIP Vol. 1, device profiles (Identity object attribute 2) named by the table
PROFILES = {
    0x00: "Generic Device (deprecated)", 0x02: "AC Drive", 0x03: "Motor Overload",
    0x07: "General Purpose Discrete I/O", 0x0C: "Communications Adapter",
    0x0E: "Programmable Logic Controller", 0x10: "Position Controller", 0x13: "DC Drive",
    0x16: "Motor Starter", 0x18: "Human-Machine Interface", 0x22: "Encoder",
    0x23: "Safety Discrete I/O Device", 0x25: "CIP Motion Drive",
    0x2B: "Generic Device (keyable)", 0x2C: "Managed Ethernet Switch",
}


@pytest.mark.parametrize(("code", "name"), sorted(PROFILES.items()))
def test_every_listed_profile_has_its_name(code: int, name: str) -> None:
    assert id_rules.device_type_name(code) == name


@pytest.mark.parametrize("code", sorted({c + d for c in PROFILES for d in (-1, 1)}
                                        - set(PROFILES) - {-1}))
def test_the_codes_next_to_a_profile_are_unlisted(code: int) -> None:
    assert id_rules.device_type_name(code) == f"vendor specific or unlisted ({code})"


def test_a_list_identity_item_cannot_be_changed() -> None:
    ident = Identity(vendor_id=1, device_type=0x0E, product_code=89, major=20, minor=11,
                     status=0x30, serial=0x1234, product_name="1769-L23E-QB1B", state=3)
    item = ListIdentityItem(1, "10.0.0.5:44818", ident)
    with pytest.raises(dataclasses.FrozenInstanceError):
        item.socket_address = "10.0.0.6:44818"  # type: ignore[misc]


def test_the_cached_vendor_and_rule_records_cannot_be_changed() -> None:
    """vendors() and product_rules() are cached: a caller changing a record would change
    every later lookup, so the records are frozen."""
    vendor = id_rules.vendors()[1]
    with pytest.raises(dataclasses.FrozenInstanceError):
        vendor.name = "someone else"  # type: ignore[misc]
    rule = id_rules.product_rules()[1][0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        rule.product = None  # type: ignore[misc]
    info = id_rules.ProductInfo("1756-L61", "B", "ControlLogix 5560")
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.series = "C"  # type: ignore[misc]
    assert id_rules.vendors()[1].name == "Rockwell Automation"
