"""``otaudit discover``: polite discovery of the simulated plant and a draft inventory that
the collector audits as it is."""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from otaudit.cli.main import app
from otaudit.collector.discover import (
    TCP_SERVICES,
    DiscoveryOptions,
    RateLimiter,
    discover,
    expand_targets,
)
from otaudit.collector.draft import ZoneRule, draft_inventory, dump_draft, merge_draft
from otaudit.collector.targets import inventory_problems, plan_inventory
from otaudit.errors import InputError
from otaudit.inventory import Inventory
from otaudit.probes.runner import run_probe
from otaudit.simulators.fleet import Fleet, generate_layout
from otaudit.simulators.fleet.layout import HIGH_PORTS, OFFLINE, SILENT
from otaudit.simulators.fleet.politeness import check_politeness
from otaudit.yamlio import parse_yaml

SUBNET = 203  # a plant of its own (see tests/fleet)
INTERVAL = 0.05  # the default: stamps jitter by some ms on busy cores
IDENTITY = ("identity.vendor", "identity.model", "identity.order_code",
            "identity.firmware_version", "identity.product")


# ---- addresses ---------------------------------------------------------------------


def test_networks_ranges_and_exclusions() -> None:
    assert expand_targets(["10.1.2.0/30"]) == ["10.1.2.1", "10.1.2.2"]  # no net/broadcast
    assert expand_targets(["10.1.2.7"]) == ["10.1.2.7"]
    assert expand_targets(["10.1.2.8/31"]) == ["10.1.2.8", "10.1.2.9"]  # point to point
    assert expand_targets(["10.1.2.10-10.1.2.13"], ["10.1.2.11"]) == [
        "10.1.2.10", "10.1.2.12", "10.1.2.13"]
    assert expand_targets(["10.1.2.0/29", "10.1.2.3"], ["10.1.2.4/30"]) == [
        "10.1.2.1", "10.1.2.2", "10.1.2.3"]  # duplicates once, in order


def test_host_count_bound_is_inclusive() -> None:
    assert len(expand_targets(["10.0.0.0/24"], max_hosts=254)) == 254
    with pytest.raises(InputError, match="more than 253 addresses"):
        expand_targets(["10.0.0.0/24"], max_hosts=253)


@pytest.mark.parametrize("spec", ["224.0.0.1", "255.255.255.255", "10.0.0.255-10.0.0.255"])
def test_broadcast_and_multicast_need_a_flag(spec: str) -> None:
    if spec.startswith("10."):
        spec = "10.0.0.0/24"  # its broadcast address is never among hosts(); nothing to refuse
        assert "10.0.0.255" not in expand_targets([spec])
        return
    with pytest.raises(InputError, match="broadcast or multicast"):
        expand_targets([spec])
    assert expand_targets([spec], allow_broadcast=True) == [spec]


@pytest.mark.parametrize("spec", ["10.0.0.300", "10.0.0.9-10.0.0.1", "nonsense", "10.0.0.1-x"])
def test_bad_specs_are_input_errors(spec: str) -> None:
    with pytest.raises(InputError):
        expand_targets([spec])


async def test_rate_limiter_spaces_acquisitions() -> None:
    limiter = RateLimiter(50.0)
    stamps = []
    for _ in range(5):
        await limiter.acquire()
        stamps.append(time.monotonic())
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert min(gaps) >= 0.02 * 0.9


def test_zone_rules() -> None:
    rule = ZoneRule.parse("10.1.2.0/24=cell-1:3", 2)
    assert (rule.zone, rule.sl_t, ipaddress.ip_address("10.1.2.9") in rule.network) == (
        "cell-1", 3, True)
    assert ZoneRule.parse("10.1.0.0/16=plant", 2).sl_t == 2
    for bad in ("10.1.2.0/24", "10.1.2.0/24=cell-1:5", "x=cell", "10.1.2.0/24=bad zone"):
        with pytest.raises(InputError):
            ZoneRule.parse(bad, 2)


# ---- the simulated plant -------------------------------------------------------------


def _plant(tmp_path: Path, name: str) -> Fleet:
    layout = generate_layout(30, seed=5, port_mode="high", subnet=SUBNET)
    return Fleet(layout, tmp_path / name, workers=2).start()


def _options(fleet: Fleet) -> DiscoveryOptions:
    services = dict(TCP_SERVICES)
    services.update({p: HIGH_PORTS[p] for p in ("modbus", "s7", "ssh")})
    return DiscoveryOptions(
        hosts=tuple(expand_targets([f"127.0.{SUBNET}.1-127.0.{SUBNET}.40"])),
        tcp_services=services, snmp_port=HIGH_PORTS["snmp"],
        snmp_credentials=(
            {"version": "v2c", "community": {"env": "PLANT_SNMP_COMMUNITY_X204"}},
            {"version": "v2c", "community": {"env": "PLANT_SNMP_COMMUNITY_RS20"}},
            {"version": "v3", "v3_user": "otaudit-ro", "v3_auth_key": {"env": "PLANT_SNMP_V3_AUTH"},
             "v3_auth_protocol": "SHA", "v3_priv_key": {"env": "PLANT_SNMP_V3_PRIV"},
             "v3_priv_protocol": "AES-128"}),
        rate=400.0, concurrency=32, connect_timeout=1.0, probe_timeout=6.0,
        min_interval=INTERVAL, snmp_request_timeout=0.5)


@pytest.mark.slow
async def test_discovery_finds_the_plant_politely_and_its_draft_audits_as_is(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fleet = _plant(tmp_path, "first")
    try:
        for name, value in fleet.env().items():
            monkeypatch.setenv(name, value)
        own = Inventory.model_validate(fleet.inventory())
        result = await discover(_options(fleet), site="plant-d")
    finally:
        fleet.stop()
    report = check_politeness(fleet.log_dir, INTERVAL)
    assert report.ok, report.summary()

    devices = {d.host: d for d in fleet.layout.devices}
    found = {h.host: h for h in result.found}
    assert result.scanned == result.total == 40 and not result.interrupted
    # everything that answers; a UDP agent that never answers cannot be told from no agent
    assert set(found) == {h for h, d in devices.items() if d.runs != OFFLINE
                          and not (d.protocol == "snmp" and d.runs == SILENT)}
    for host, seen in found.items():
        assert devices[host].protocol in seen.services, (host, seen.services)

    draft = draft_inventory(result, site="plant-d", ssh_credentials={
        "user": "auditor", "password": {"env": "PLANT_SSH_PASSWORD"}})
    text = dump_draft(draft, "test draft")
    assert inventory_problems(parse_yaml(text, "draft.yaml")) == []
    drafted = Inventory.model_validate(yaml.safe_load(text))
    by_host = {next(iter(a.endpoints.values())).host: a for a in drafted.assets}
    for asset in own.assets:
        if next(iter(asset.endpoints.values())).host in found:
            mine = by_host[next(iter(asset.endpoints.values())).host]
            assert mine.kind == asset.kind, (asset.id, mine.kind)

    # the draft audits as it is, and as the plant's own inventory does
    second = _plant(tmp_path, "second")
    try:
        own_obs = await _audit(own)
        draft_obs = await _audit(drafted)
    finally:
        second.stop()
    for host, obs in draft_obs.items():
        theirs = own_obs[host]
        assert obs.status == theirs.status, (host, obs.reason, theirs.reason)
        for path in IDENTITY:  # discovery's identify and the audit agree
            if path in found[host].observations.get(obs.probe, obs).facts and path in obs.facts:
                assert found[host].observations[obs.probe].facts[path].value == \
                    obs.facts[path].value


async def _audit(inventory: Inventory) -> dict[str, object]:
    jobs = [job for plan in plan_inventory(inventory) for job in plan.jobs]
    observations = await asyncio.gather(*(
        run_probe(probe, target, collector_id="t", site=inventory.site, deadline=6.0,
                  min_interval=INTERVAL) for probe, target in jobs))
    return {target.host: obs for (_, target), obs in zip(jobs, observations, strict=True)}


def test_merge_keeps_what_the_user_wrote() -> None:
    existing = (
        "# plant A, maintained by hand\n"
        "site: plant-a\n"
        "zones:\n"
        "  - {id: cell-1, sl_t: 3}   # the packaging cell\n"
        "assets:\n"
        "  - id: plc-17   # the labeller\n"
        "    kind: plc\n"
        "    zone: cell-1\n"
        "    endpoints:\n"
        "      s7: {host: 10.1.2.17, family: s7-1200}\n")
    draft = {"site": "discovered", "zones": [{"id": "net-10-1-2-0", "sl_t": 2}], "assets": [
        {"id": "plc-10-1-2-17", "name": "x", "kind": "plc", "zone": "net-10-1-2-0",
         "endpoints": {"s7": {"host": "10.1.2.17", "family": "s7-1500"},
                       "snmp": {"host": "10.1.2.17", "version": "v2c",
                                "community": {"env": "C"}}}},
        {"id": "plc-10-1-2-18", "name": "y", "kind": "plc", "zone": "net-10-1-2-0",
         "endpoints": {"modbus": {"host": "10.1.2.18"}}}]}
    merged = merge_draft(existing, draft)
    assert merged.assets_added == ["plc-10-1-2-18"]
    assert merged.endpoints_added == ["plc-17: snmp"]
    assert merged.zones_added == ["net-10-1-2-0"]
    for kept in ("# plant A, maintained by hand", "# the packaging cell", "# the labeller",
                 "family: s7-1200"):
        assert kept in merged.text
    assert "s7-1500" not in merged.text
    assert inventory_problems(parse_yaml(merged.text, "merged.yaml")) == []


def test_cli_refuses_bad_ports_and_credentials(tmp_path: Path) -> None:
    runner = CliRunner()
    bad = runner.invoke(app, ["discover", "127.0.9.1", "--port", "modbus=x"])
    assert bad.exit_code == 2 and "expected SERVICE=PORT" in bad.output
    bad = runner.invoke(app, ["discover", "127.0.9.1", "--snmp-v3", "user"])
    assert bad.exit_code == 2 and "USER:AUTH_VAR" in bad.output
    bad = runner.invoke(app, ["discover", "127.0.9.1", "--ssh-password-env", "X"])
    assert bad.exit_code == 2 and "need --ssh-user" in bad.output
    bad = runner.invoke(app, ["discover", "224.0.0.1"])
    assert bad.exit_code == 2 and "broadcast or multicast" in bad.output
