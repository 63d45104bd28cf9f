"""The plant layout: deterministic, loopback-only, the right mix, a valid inventory."""

from __future__ import annotations

import ipaddress

import pytest
import yaml

from otaudit.collector.targets import plan_inventory
from otaudit.inventory import Inventory
from otaudit.simulators.fleet.layout import (
    CATALOGUE,
    PLANT_SECRETS,
    STANDARD_PORTS,
    allocate,
    device_address,
    generate_layout,
)

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
RESERVED = ipaddress.ip_network("127.0.0.0/24")  # 127.0.0.1 and friends: never a device


def test_same_seed_same_plant_other_seed_other_plant() -> None:
    a, b = generate_layout(300, seed=7), generate_layout(300, seed=7)
    assert a.inventory() == b.inventory()
    other = generate_layout(300, seed=8)
    assert [d.variant for d in other.devices] != [d.variant for d in a.devices]
    assert other.by_variant() == a.by_variant()  # same mix, other order


@pytest.mark.parametrize("n", [1, 20, 1000, 10_000])
def test_addresses_are_unique_loopback_and_never_127_0_0(n: int) -> None:
    hosts = [ipaddress.ip_address(d.host) for d in generate_layout(n, seed=1).devices]
    assert len(set(hosts)) == n
    assert all(h in LOOPBACK and h not in RESERVED for h in hosts)


def test_address_bounds() -> None:
    assert device_address(0) == "127.0.1.1"
    assert device_address(253) == "127.0.1.254"
    assert device_address(254) == "127.0.2.1"
    assert device_address(0, subnet=200) == "127.0.200.1"
    for bad in ((-1, 1), (0, 0), (254 * 56, 200)):
        with pytest.raises(ValueError):
            device_address(*bad)


def test_thousand_devices_follow_the_catalogue_weights() -> None:
    layout = generate_layout(1000, seed=1)
    assert layout.by_variant() == {v.name: v.weight for v in CATALOGUE}
    protocols = {d.protocol for d in layout.devices}
    assert protocols == set(STANDARD_PORTS)
    assert all(d.port == STANDARD_PORTS[d.protocol] for d in layout.devices)


def test_small_plant_has_every_protocol_and_misbehaving_devices() -> None:
    layout = generate_layout(20, seed=1)
    assert {d.protocol for d in layout.devices} == set(STANDARD_PORTS)
    runs = {d.runs for d in layout.devices}
    assert {"offline", "silent", "garbage"} <= runs
    assert any(d.sim_options.get("behaviour") == "slow" for d in layout.devices)
    assert sum(allocate(7, list(CATALOGUE)).values()) == 7


def test_protocol_subset_faults_off_and_port_modes() -> None:
    layout = generate_layout(50, seed=2, protocols={"modbus"}, faults=False, port_mode="high")
    assert {d.protocol for d in layout.devices} == {"modbus"}
    assert all(d.runs == "profile" and not d.sim_options for d in layout.devices)
    assert {d.port for d in layout.devices} == {5020}
    assert {d.port for d in generate_layout(5, port_mode="any").devices} == {0}
    with pytest.raises(ValueError):
        generate_layout(5, protocols={"bacnet"})
    with pytest.raises(ValueError):
        generate_layout(0)


def test_inventory_validates_and_holds_only_secret_references() -> None:
    layout = generate_layout(1000, seed=3)
    data = layout.inventory()
    text = yaml.safe_dump(data, sort_keys=False)
    inventory = Inventory.model_validate(yaml.safe_load(text))
    assert len(inventory.assets) == 1000
    assert {z.id for z in inventory.zones} == {d.zone for d in layout.devices}
    for secret in PLANT_SECRETS.values():
        assert secret not in text
    assert "&id" not in text  # no YAML anchors shared between assets
    assert set(layout.env()) <= set(PLANT_SECRETS)
    plans = plan_inventory(inventory)  # every endpoint passes its probe's options model
    assert sum(len(p.jobs) for p in plans) == 1000
