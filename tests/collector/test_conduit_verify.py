"""Conduit verification against real filtering: a network namespace of its own with an
nftables rule set, reached over a veth pair from the collector (this test, root namespace).

The rule set leaves open exactly what the test says; the collector must report, per port,
what answered that no conduit allows and what a conduit allows that did not answer.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from otaudit.collector.targets import plan_inventory
from otaudit.inventory import Inventory
from otaudit.probes.reach.probe import ReachProbe
from otaudit.probes.runner import run_probe

from tests_helpers import missing_service

PORTS = (502, 102, 22, 443)
LISTENER = """
import socket, sys, selectors
sel = selectors.DefaultSelector()
for port in map(int, sys.argv[2:]):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[1], port)); s.listen(16); sel.register(s, selectors.EVENT_READ)
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        conn, _ = key.fileobj.accept(); conn.close()
"""
# Inside the device's namespace: 502 and 102 pass, 22 is dropped, 443 rejected with a reset.
RULES = """
table inet otaudit {
  chain input {
    type filter hook input priority 0; policy drop;
    iif lo accept
    ct state established,related accept
    tcp dport { 502, 102 } accept
    tcp dport 443 reject with tcp reset
  }
}
"""


def _run(*args: str, ns: str | None = None) -> None:
    command = ["ip", "netns", "exec", ns, *args] if ns else list(args)
    subprocess.run(command, check=True, capture_output=True)


@pytest.fixture
def filtered_device(tmp_path: Path) -> Iterator[str]:
    """A device at 10.231.<n>.2 in a namespace of its own, behind nftables rules."""
    if os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("ip"):
        missing_service("conduit verification needs root, iproute2 and nftables "
                        "(network namespaces and a rule set of the test's own)")
    tag = uuid.uuid4().hex[:6]
    ns, outside, inside = f"ota-{tag}", f"va{tag}", f"vb{tag}"
    net = 1 + int(tag, 16) % 250
    here, there = f"10.231.{net}.1", f"10.231.{net}.2"
    listener = None
    try:
        _run("ip", "netns", "add", ns)
        _run("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
        _run("ip", "link", "set", inside, "netns", ns)
        _run("ip", "addr", "add", f"{here}/30", "dev", outside)
        _run("ip", "link", "set", outside, "up")
        _run("ip", "addr", "add", f"{there}/30", "dev", inside, ns=ns)
        _run("ip", "link", "set", inside, "up", ns=ns)
        _run("ip", "link", "set", "lo", "up", ns=ns)
        rules = tmp_path / "rules.nft"
        rules.write_text(RULES)
        _run("nft", "-f", str(rules), ns=ns)
        listener = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", LISTENER,
                                     there, *map(str, PORTS)], stdout=subprocess.PIPE,
                                    text=True)
        assert listener.stdout is not None and listener.stdout.readline().strip() == "ready"
        yield there
    finally:
        if listener is not None:
            listener.kill()
            listener.wait(10)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", outside], capture_output=True)


def inventory(host: str) -> Inventory:
    return Inventory.model_validate({
        "site": "plant-a", "collector_zone": "control",
        "zones": [{"id": "control", "sl_t": 2}, {"id": "cell-1", "sl_t": 2}],
        "assets": [{"id": "plc-1", "kind": "plc", "zone": "cell-1", "endpoints": {
            "modbus": {"host": host}, "s7": {"host": host}, "ssh": {"host": host}}}],
        "conduits": [{"id": "c-01", "between": ["control", "cell-1"], "flows": [
            {"protocol": "modbus", "ports": [502], "from": "control", "to": "cell-1"},
            {"protocol": "ssh", "from": "control", "to": "cell-1"},
            {"protocol": "https", "ports": [443], "from": "control", "to": "cell-1"}]}],
    })


async def test_reports_exactly_the_paths_the_rules_leave_open(filtered_device: str) -> None:
    plans = plan_inventory(inventory(filtered_device))
    (probe, target), = [(p, t) for p, t in plans[0].jobs if isinstance(p, ReachProbe)]
    started = time.monotonic()
    obs = await run_probe(probe, target, collector_id="c1", site="plant-a", deadline=20)
    assert obs.status.value == "ok", obs.reason
    facts = {path: fact.value for path, fact in obs.facts.items()}
    assert facts["reach.from_zone"] == "control"
    results = {t["port"]: (t["result"], t["allowed"]) for t in facts["reach.tested"]}
    assert results == {502: ("open", True), 102: ("open", False), 22: ("filtered", True),
                       443: ("closed", True)}
    assert facts["reach.unexpected"] == [{"port": 102, "protocol": "s7"}]
    assert facts["reach.blocked_expected"] == [
        {"port": 22, "protocol": "ssh", "conduit": "c-01", "result": "filtered"},
        {"port": 443, "protocol": "https", "conduit": "c-01", "result": "closed"}]
    assert len(obs.evidence) == 4 and time.monotonic() - started < 15


def test_no_reach_job_without_a_collector_zone_or_inside_it() -> None:
    inv = inventory("10.231.0.2")
    assert any(isinstance(p, ReachProbe) for p, _ in plan_inventory(inv)[0].jobs)
    for changed in (inv.model_copy(update={"collector_zone": None}),
                    inv.model_copy(update={"collector_zone": "cell-1"}),
                    inv.model_copy(update={"conduits": []})):
        assert not any(isinstance(p, ReachProbe) for p, _ in plan_inventory(changed)[0].jobs)


def test_a_zone_pair_without_a_conduit_allows_nothing() -> None:
    inv = inventory("10.231.0.2")
    other = inv.model_copy(update={"zones": [*inv.zones, inv.zones[0].model_copy(
        update={"id": "cell-2"})], "assets": [inv.assets[0].model_copy(
            update={"zone": "cell-2"})]})
    (_, target), = [(p, t) for p, t in plan_inventory(other)[0].jobs
                    if isinstance(p, ReachProbe)]
    assert {(p.port, p.allowed) for p in target.options.ports} == {
        (502, False), (102, False), (22, False)}
