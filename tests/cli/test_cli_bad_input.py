"""Every command, fed bad input: no traceback, a message that names the problem, and the exit
code the README's table documents (``otaudit.errors.ExitCode``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from otaudit.cli.main import app
from otaudit.errors import ExitCode
from otaudit.server.db import init_db, make_engine

from tests_helpers import free_tcp_port

BAD_INVENTORY = """\
site: plant-a
zones: [{id: cell-1, sl_t: 5}]
assets:
  - {id: plc-1, kind: plc, zone: cell-9, endpoints: {modbus: {host: 10.0.0.1, unit: 900}}}
"""
GOOD_INVENTORY = """\
site: plant-a
zones: [{id: cell-1, sl_t: 2}]
assets:
  - {id: plc-1, kind: plc, zone: cell-1, endpoints: {modbus: {host: 127.0.0.1, port: 1}}}
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("bad-input")
    (root / "bad.yaml").write_text(BAD_INVENTORY)
    (root / "good.yaml").write_text(GOOD_INVENTORY)
    (root / "syntax.yaml").write_text("site: [unclosed\n")
    (root / "notcsaf.json").write_text('{"hello": "world"}')
    engine = make_engine(f"sqlite:///{root / 'otaudit.db'}")
    init_db(engine)
    engine.dispose()
    (root / "keys").mkdir()
    (root / "keys" / "c1.pub").write_text("not a key\n")
    (root / "keys" / "receipt.key").write_text("not a key either\n")
    return {"root": str(root), "db": f"sqlite:///{root / 'otaudit.db'}",
            "missing_db": f"sqlite:///{root / 'absent.db'}"}


BAD = ExitCode.BAD_INPUT
CASES: list[tuple[str, list[str], ExitCode, str]] = [
    # (name, arguments ({root}, {db}, {missing_db} filled in), exit code, text in the message)
    ("unknown command", ["nosuch"], BAD, "No such command"),
    ("probe: unknown protocol", ["probe", "nosuch", "1.2.3.4"], BAD, "No such command"),
    ("probe modbus: unit out of range", ["probe", "modbus", "127.0.0.1", "--unit", "900"], BAD,
     "unit: Input should be less than or equal to 255"),
    ("probe s7: rack not a number", ["probe", "s7", "127.0.0.1", "--rack", "x"], BAD, "rack"),
    ("probe snmp: literal v3 key", ["probe", "snmp", "127.0.0.1", "--v3-user", "u",
                                    "--v3-auth-key", "secret"], BAD, "--v3-auth-key-env VAR"),
    ("probe ssh: unknown option", ["probe", "ssh", "127.0.0.1", "--bogus", "1"], BAD,
     "bogus: unknown field"),
    ("probe enip: TLS port out of range", ["probe", "enip", "127.0.0.1", "--tls-port",
                                            "70000"], BAD,
     "tls_port: Input should be less than or equal to 65535"),
    ("probe opcua: unknown option", ["probe", "opcua", "127.0.0.1", "--bogus", "1"], BAD,
     "bogus: unknown field"),
    ("probe winrm: basic over http", ["probe", "winrm", "127.0.0.1", "--scheme", "http",
                                      "--auth", "basic", "--user", "u", "--password-env",
                                      "PW"], BAD, "would send the password in clear"),
    ("probe: stray argument", ["probe", "modbus", "127.0.0.1", "stray"], BAD,
     "unexpected argument 'stray'"),
    ("sim: unknown protocol", ["sim", "nosuch"], BAD, "No such command"),
    ("sim modbus: unknown profile", ["sim", "modbus", "--profile", "nosuch"], BAD,
     "unknown modbus profile 'nosuch'; known: gateway-no-devid"),
    ("sim s7: unknown option", ["sim", "s7", "--colour", "red"], BAD, "unknown option(s) --colour"),
    ("sim snmp: missing recording", ["sim", "snmp", "--snmprec", "{root}/none.snmprec"], BAD,
     "none.snmprec"),
    ("sim ssh: unknown profile", ["sim", "ssh", "--profile", "nosuch"], BAD,
     "unknown ssh profile 'nosuch'"),
    ("sim enip: unknown profile", ["sim", "enip", "--profile", "nosuch"], BAD,
     "unknown enip profile 'nosuch'"),
    ("sim opcua: unknown option", ["sim", "opcua", "--colour", "red"], BAD,
     "unknown option(s) --colour"),
    ("sim winrm: unknown reply to break", ["sim", "winrm", "--break-reply", "nosuch"], BAD,
     "'nosuch': one of ['command', 'create', 'delete', 'receive', 'signal']"),
    ("sim: not loopback", ["sim", "modbus", "--host", "10.0.0.1"], BAD, "loopback"),
    ("sim plant: no device count", ["sim", "plant"], BAD, "--devices N is required"),
    ("collector: missing inventory", ["collector", "run", "--inventory", "{root}/none.yaml",
                                      "--once"], BAD, "none.yaml"),
    ("collector: bad inventory", ["collector", "run", "--inventory", "{root}/bad.yaml", "--once"],
     BAD, "a target security level is 1, 2, 3 or 4"),
    ("collector: fail-on it cannot judge", ["collector", "run", "--inventory",
                                            "{root}/good.yaml", "--once", "--fail-on", "fail"],
     BAD, "this command can check device-error"),
    ("collector: bad broker URL", ["collector", "run", "--inventory", "{root}/good.yaml",
                                   "--once", "--broker", "http://x"], BAD, "mqtt://host"),
    ("collector status: no outbox", ["collector", "status", "--state-dir", "{root}/nostate"],
     ExitCode.STATE, "no readable outbox"),
    ("server run: unusable receipt key", ["server", "run", "--db", "{db}"], ExitCode.STATE,
     "receipt.key"),
    ("server init: bad URL", ["server", "init", "--db", "foo"], BAD, "expected sqlite:///PATH"),
    ("server init: no such folder", ["server", "init", "--db", "sqlite:////nonexistent/x.db"],
     ExitCode.STATE, "folder /nonexistent does not exist"),
    ("server run: missing baseline overlay", ["server", "run", "--db", "{db}", "--baseline",
                                              "{root}/nodir"], BAD, "not a directory"),
    ("server run: bad --metrics", ["server", "run", "--db", "{db}", "--metrics", "9464"], BAD,
     "expected HOST:PORT"),
    ("server run: missing inventory", ["server", "run", "--db", "{db}", "--inventory",
                                       "{root}/none.yaml"], BAD, "none.yaml"),
    ("report: no database yet", ["report", "--db", "{missing_db}"], ExitCode.STATE,
     "otaudit server init"),
    ("report: bad URL", ["report", "--db", "foo"], BAD, "expected sqlite:///PATH"),
    ("report: database server unreachable", ["report", "--db",
                                             "postgresql://otaudit@127.0.0.1:{closed}/x"],
     ExitCode.UNREACHABLE, "cannot reach the database at 127.0.0.1:{closed}"),
    ("report: unknown zone", ["report", "--db", "{db}", "--zone", "nosuch"], BAD,
     "unknown zone 'nosuch'"),
    ("report: unknown site", ["report", "--db", "{db}", "--site", "nosuch"], BAD,
     "unknown site 'nosuch'"),
    ("report: unknown format", ["report", "--db", "{db}", "--format", "xml"], BAD,
     "expected one of table, json, html, pdf, sarif, oscal, csv"),
    ("evidence export: no signing key", ["evidence", "export", "--site", "plant-a", "--out",
                                         "{root}/e.zip", "--db", "{db}"], ExitCode.STATE,
     "no server signing key"),
    ("evidence export: key not readable", ["evidence", "export", "--site", "plant-a", "--out",
                                           "{root}/e.zip", "--key", "{root}/absent.key"],
     ExitCode.STATE, "absent.key"),
    ("evidence verify: not a zip", ["evidence", "verify", "{root}/notcsaf.json"], BAD,
     "not a readable zip file"),
    ("evidence verify: no such file", ["evidence", "verify", "{root}/absent.zip"], BAD,
     "no such file"),
    ("report: pdf without --out", ["report", "--db", "{db}", "--format", "pdf"], BAD,
     "--format pdf writes a PDF file: give --out PATH"),
    ("report: unknown fail-on", ["report", "--db", "{db}", "--fail-on", "bogus"], BAD,
     "--fail-on 'bogus'"),
    ("gap: no database yet", ["gap", "--db", "{missing_db}"], ExitCode.STATE,
     "otaudit server init"),
    ("gap: unknown zone", ["gap", "--db", "{db}", "--zone", "nosuch"], BAD,
     "unknown zone 'nosuch'"),
    ("gap: unknown format", ["gap", "--db", "{db}", "--format", "xml"], BAD,
     "expected table or json"),
    ("drift: no database yet", ["drift", "--db", "{missing_db}"], ExitCode.STATE,
     "no database at"),
    ("drift: bad --since", ["drift", "--db", "{db}", "--since", "yesterday"], BAD,
     "expected a date YYYY-MM-DD"),
    ("drift: unknown format", ["drift", "--db", "{db}", "--format", "xml"], BAD,
     "expected table or json"),
    ("drift: unknown site", ["drift", "--db", "{db}", "--site", "nosuch"], BAD,
     "nosuch"),
    ("patch status: unknown state", ["patch", "status", "--db", "{db}", "--state", "bogus"], BAD,
     "'bogus': expected one of open, needs_review, patched"),
    ("patch status: no database yet", ["patch", "status", "--db", "{missing_db}"],
     ExitCode.STATE, "no database at"),
    ("advisories import: missing source", ["advisories", "import", "{root}/none",
                                           "--db", "{db}"], BAD, "no such file or folder"),
    ("advisories import: a rejected document", ["advisories", "import", "{root}/notcsaf.json",
                                                "--db", "{db}"], ExitCode.FOUND,
     "rejected 1"),
    ("advisories match: no database yet", ["advisories", "match", "--vendor", "Siemens",
                                           "--product", "S7", "--db", "{missing_db}"],
     ExitCode.STATE, "no database at"),
    ("advisories match: unknown format", ["advisories", "match", "--vendor", "Siemens",
                                          "--product", "S7", "--format", "xml"], BAD,
     "expected table or json"),
    ("advisories kev update: not a catalogue", ["advisories", "kev", "update", "--file",
                                                "{root}/notcsaf.json", "--db", "{db}"], BAD,
     "notcsaf.json"),
    ("keys generate: bad collector id", ["keys", "generate", "c1/#", "--out", "{root}/k2"], BAD,
     "COLLECTOR"),
    ("keys id: not a key", ["keys", "id", "{root}/keys/c1.pub"], BAD, "c1.pub"),
    ("inventory validate: every problem", ["inventory", "validate", "{root}/bad.yaml"],
     ExitCode.FOUND, "unknown zone 'cell-9'"),
    ("inventory validate: YAML syntax", ["inventory", "validate", "{root}/syntax.yaml"],
     ExitCode.FOUND, "line"),
    ("inventory validate: missing file", ["inventory", "validate", "{root}/none.yaml"], BAD,
     "no such file"),
    ("inventory show: bad inventory", ["inventory", "show", "{root}/bad.yaml"], BAD,
     "sl_t (line 2): a target security level is 1, 2, 3 or 4"),
    ("inventory import: missing mapping", ["inventory", "import", "{root}/bad.yaml",
                                            "--mapping", "{root}/none.yaml"], BAD, "none.yaml"),
    ("inventory export: bad inventory", ["inventory", "export", "{root}/bad.yaml"], BAD,
     "a target security level is 1, 2, 3 or 4"),
    ("baseline lint: missing overlay", ["baseline", "lint", "--baseline", "{root}/nodir"],
     ExitCode.FOUND, "not a directory"),
    ("baseline test: missing root", ["baseline", "test", "--root", "{root}/nodir"],
     ExitCode.FOUND, "not a directory"),
    ("baseline controls: missing overlay", ["baseline", "controls", "--baseline",
                                            "{root}/nodir"], BAD, "not a directory"),
    ("discover: a multicast address", ["discover", "224.0.0.1"], BAD, "broadcast or multicast"),
    ("discover: too many hosts", ["discover", "10.0.0.0/16"], BAD, "more than 1024 addresses"),
    ("discover: unreadable merge file", ["discover", "127.0.9.1", "--merge", "{root}/none.yaml"],
     BAD, "cannot read"),
    ("demo: unknown format", ["demo", "--format", "xml", "--out", "{root}/demo"], BAD,
     "expected table or json"),
    ("demo: bad broker URL", ["demo", "--broker", "foo", "--out", "{root}/demo"], BAD,
     "mqtt://host"),
    ("demo --serve: bad address", ["demo", "--serve", "--http", "nowhere", "--out",
                                   "{root}/demo"], BAD, "expected HOST:PORT"),
    ("server user add: unknown role", ["server", "user", "add", "ann", "--site", "plant-a",
                                       "--role", "root", "--db", "{db}"], BAD,
     "expected one of viewer, auditor, admin"),
    ("server user add: bad site id", ["server", "user", "add", "ann", "--site", "a/b",
                                      "--role", "viewer", "--db", "{db}"], BAD, "a site id"),
    ("server token create: bad lifetime", ["server", "token", "create", "--user", "ann",
                                           "--site", "plant-a", "--role", "viewer",
                                           "--expires", "soon", "--db", "{db}"], BAD,
     "expected days or hours"),
    ("server token create: unknown user", ["server", "token", "create", "--user", "ann",
                                           "--site", "plant-a", "--role", "viewer",
                                           "--db", "{db}"], BAD, "no such user"),
    ("server token revoke: unknown id", ["server", "token", "revoke", "99", "--db", "{db}"],
     BAD, "no token 99"),
    ("server run: bad --http", ["server", "run", "--http", "8080", "--db", "{db}"], BAD,
     "expected HOST:PORT"),
    ("api: bad --http", ["api", "--http", "localhost:99999", "--db", "{db}"], BAD,
     "expected HOST:PORT"),
    ("api: no database", ["api", "--db", "{missing_db}"], ExitCode.STATE, "no database"),
]


def _fill(args: list[str], files: dict[str, str], closed: int) -> list[str]:
    return [a.format(**files, closed=closed) for a in args]


@pytest.mark.parametrize(("name", "args", "code", "text"), CASES, ids=[c[0] for c in CASES])
def test_bad_input(name: str, args: list[str], code: ExitCode, text: str,
                   files: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(files["root"])
    monkeypatch.setenv("OTAUDIT_STATE_DIR", files["root"] + "/state")
    monkeypatch.setenv("OTAUDIT_RECEIPT_SIGNING_KEY_FILE", files["root"] + "/keys/receipt.key")
    closed = free_tcp_port()
    result = CliRunner().invoke(app, _fill(args, files, closed))
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit | type(None)), result.exception
    assert "Traceback" not in result.output
    assert text.format(closed=closed) in result.output


def test_every_command_has_a_bad_input_case() -> None:
    """A new command must bring its bad-input cases along."""
    from otaudit.cli.main import app as root

    def leaves(group, prefix=()):
        import typer.main

        command = typer.main.get_command(group)
        for name, sub in getattr(command, "commands", {}).items():
            if hasattr(sub, "commands"):
                for child in sub.commands:
                    yield (*prefix, name, child)
            else:
                yield (*prefix, name)
    covered = {tuple(a for a in args[:2] if not a.startswith("-")) for _, args, _, _ in CASES}
    covered |= {(args[0],) for _, args, _, _ in CASES}
    commands = list(leaves(root))
    assert {("report",), ("probe", "modbus"), ("sim", "plant"), ("server", "init")} <= set(
        commands)
    missing = [c for c in commands if c not in covered and c[:1] not in {("probes",)}]
    assert not missing, f"commands without a bad-input case: {missing}"


def test_real_entry_point_prints_no_traceback_and_creates_nothing(tmp_path: Path) -> None:
    """`otaudit gap` in an empty folder: a message, exit 3, and no empty database left."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTAUDIT_")}
    done = subprocess.run([sys.executable, "-m", "otaudit.cli.main", "gap"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == ExitCode.STATE, done.stderr
    assert "Traceback" not in done.stderr and "otaudit server init" in done.stderr
    assert list(tmp_path.iterdir()) == []
    debug = subprocess.run([sys.executable, "-m", "otaudit.cli.main", "-v", "gap"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert debug.returncode == ExitCode.STATE and "Traceback" in debug.stderr
    version = subprocess.run([sys.executable, "-m", "otaudit.cli.main", "--version"],
                             capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("otaudit ")


def test_readme_exit_code_table_matches_the_code() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme.split("### Exit codes", 1)[1].split("\n\n")[2]
    documented = {int(m) for m in re.findall(r"^\| (\d+) \|", table, re.M)}
    assert documented == {int(c) for c in ExitCode}
