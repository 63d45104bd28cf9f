"""A collector imports a protocol stack only when its inventory uses that protocol.

Each case runs a fresh interpreter (nothing imported by other tests), loads the CLI, the
collector and an inventory's plan as ``otaudit collector run`` does, and lists the
protocol libraries then in ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

STACKS = {"modbus": "pymodbus", "s7": "snap7", "snmp": "pysnmp", "ssh": "asyncssh",
          "enip": "pycomm3", "opcua": "asyncua"}
# enip's client is our own (no pycomm3: that is a test dependency only); listed so that a
# probe that started to import it would show here.

PROGRAM = """
import json, sys
from otaudit.cli.main import app  # the command line, as the console script loads it
from otaudit.cli.collector import _once  # the --once path
from otaudit.collector.once import run_once
from otaudit.collector.targets import load_plan
from otaudit.collector.daemon import CollectorDaemon
inventory, plans = load_plan(sys.argv[1])
assert sum(len(p.jobs) for p in plans) == len(plans) > 0
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""

ENDPOINTS = {
    "modbus": {"host": "127.0.0.1", "unit": 1},
    "s7": {"host": "127.0.0.1"},
    "snmp": {"host": "127.0.0.1", "community": {"env": "SNMP_RO"}},
    "ssh": {"host": "127.0.0.1"},
    "enip": {"host": "127.0.0.1"},
    "opcua": {"host": "127.0.0.1"},
}


def loaded_after_planning(tmp_path: Path, protocols: list[str]) -> set[str]:
    inventory = {"site": "s", "zones": [{"id": "z", "sl_t": 2}], "assets": [
        {"id": f"a-{p}", "kind": "plc", "zone": "z", "endpoints": {p: ENDPOINTS[p]}}
        for p in protocols]}
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(inventory))
    done = subprocess.run([sys.executable, "-c", PROGRAM, str(path)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_a_modbus_only_inventory_loads_pymodbus_and_no_other_stack(tmp_path: Path) -> None:
    loaded = loaded_after_planning(tmp_path, ["modbus"])
    assert "pymodbus" in loaded  # the one it needs (so the listing is not empty by mistake)
    assert not {"pysnmp", "asyncssh", "snap7", "asyncua", "pycomm3"} & loaded, loaded


@pytest.mark.parametrize("protocol", ["s7", "snmp", "ssh", "opcua"])
def test_each_stack_is_loaded_by_its_protocol_only(tmp_path: Path, protocol: str) -> None:
    loaded = loaded_after_planning(tmp_path, [protocol])
    if protocol == "opcua":  # its probe imports asyncua only when it runs
        assert "asyncua" not in loaded
    else:
        assert STACKS[protocol] in loaded
    others = {stack for name, stack in STACKS.items() if name != protocol}
    assert not others & loaded, others & loaded


def test_no_signing_library_nor_server_code_without_keys(tmp_path: Path) -> None:
    """Without a signing key the collector does not need cryptography (~8 MiB resident);
    the server, its database layer and the report stack are never loaded."""
    loaded = loaded_after_planning(tmp_path, ["modbus"])
    assert "cryptography" not in loaded
    assert not {"sqlalchemy", "alembic", "weasyprint", "jinja2", "psycopg"} & loaded, loaded


def test_ssh_brings_cryptography_with_it(tmp_path: Path) -> None:
    """The other side of the test above: the listing sees cryptography when it is there."""
    assert "cryptography" in loaded_after_planning(tmp_path, ["ssh"])


COLLECTOR_ROUTE = """
import json, sys
sys.argv = ["otaudit", *sys.argv[1:]]
from otaudit.cli import main
try:
    main.main()
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def modules_of_command(*argv: str) -> tuple[object, set[str]]:
    done = subprocess.run([sys.executable, "-c", COLLECTOR_ROUTE, *argv], capture_output=True,
                          text=True, timeout=120, check=False)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["code"], set(result["modules"])


@pytest.mark.parametrize("argv", [("collector", "status", "--json", "--state-dir", "{tmp}"),
                                  ("-v", "-q", "collector", "status", "--state-dir", "{tmp}")])
def test_the_collector_command_builds_only_the_collector_commands(tmp_path: Path,
                                                                  argv: tuple[str, ...]) -> None:
    """``otaudit collector ...`` (root flags before it or not) imports no other command's
    module; ``collector status`` on an empty state folder still ends with exit code 3."""
    code, loaded = modules_of_command(*(a.format(tmp=tmp_path) for a in argv))
    assert code == 3
    assert "otaudit.cli.collector" in loaded
    others = {"otaudit.cli.server", "otaudit.cli.probe", "otaudit.cli.sim",
              "otaudit.cli.advisories", "otaudit.cli.accounts", "otaudit.cli.demo"}
    assert not others & loaded, others & loaded


def test_other_commands_still_see_the_whole_command_line(tmp_path: Path) -> None:
    code, loaded = modules_of_command("probes")
    assert code in (0, None)
    assert {"otaudit.cli.server", "otaudit.cli.probe", "otaudit.cli.collector"} <= loaded


def test_command_word_skips_the_root_flags() -> None:
    from otaudit.cli.main import command_word

    assert command_word(["-v", "--quiet", "collector", "run"]) == "collector"
    assert command_word(["-vq", "server", "collector"]) == "server"
    assert command_word(["--version"]) is None
    assert command_word([]) is None
