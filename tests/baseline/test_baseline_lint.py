"""``lint`` reports each kind of problem with its file and line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from baseline_testkit import docs_catalogue, fixture_baseline_copy, fixture_catalogue  # noqa: F401
from typer.testing import CliRunner

from otaudit.errors import InputError
from otaudit.server.baseline import load_baseline
from otaudit.server.baseline.lint import lint


def edit(path: Path, old: str, new: str) -> int:
    """Replace ``old`` (once) in ``path``; return the 1-based line where ``new`` starts."""
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} not unique in {path}"
    text = text.replace(old, new)
    path.write_text(text)
    return text[: text.index(new)].count("\n") + 1


def problems_at(problems, file: str, line: int | None) -> list[str]:
    out = []
    for p in problems:
        if p.file.endswith(file) and (line is None or p.line == line):
            out.append(p.message)
    return out


def expect(problems, file: str, line: int | None, pattern: str) -> None:
    found = problems_at(problems, file, line)
    assert any(re.search(pattern, m) for m in found), (
        f"no problem matching {pattern!r} at {file}:{line}; got:\n"
        + "\n".join(str(p) for p in problems))


def check_file(root: Path, cid: str) -> Path:
    return next(root.glob(f"checks/*/{cid}.yaml"))


def test_bundled_baseline_is_clean(catalogue):
    assert [str(p) for p in lint(None, catalogue)] == []


def test_catalogue_from_docs_covers_every_family(catalogue):
    assert {"identity.vendor", "s7.protection_level", "snmp.v1_enabled", "sshd.max_auth_tries",
            "mgmt.telnet_enabled", "modbus.unauthenticated_read"} <= set(catalogue)
    assert catalogue["identity.firmware_version"].type == "version"


def test_yaml_syntax_error(baseline_copy, catalogue):
    f = check_file(baseline_copy, "OTA-S7-002")
    line = edit(f, "severity: high\n", "severity: [high\n")
    problems = lint(baseline_copy, catalogue)
    assert problems_at(problems, "checks/s7/OTA-S7-002.yaml", None) == [
        "invalid YAML: did not find expected ',' or ']'"]
    expect(problems, "checks/s7/OTA-S7-002.yaml", line + 1, r"^invalid YAML: ")


def test_unknown_field(baseline_copy, catalogue):
    f = check_file(baseline_copy, "OTA-S7-002")
    line = edit(f, "severity: high\n", "severity: high\nseverty: low\n") + 1
    expect(lint(baseline_copy, catalogue), "OTA-S7-002.yaml", line, "severty: unknown field")


def test_unknown_fact_path(baseline_copy, catalogue):
    f = check_file(baseline_copy, "OTA-S7-002")
    line = edit(f, "  fact: s7.password_set\n", "  fact: s7.pasword_set\n")
    expect(lint(baseline_copy, catalogue), "OTA-S7-002.yaml", line,
           "unknown fact path 's7.pasword_set'")


def test_unknown_fact_path_in_nested_condition_and_message(baseline_copy, catalogue):
    f = check_file(baseline_copy, "OTA-HOST-009")
    line = edit(f, "- {fact: pwpol.lockout_unlock_time,", "- {fact: pwpol.unlock_time,")
    msg_line = edit(f, "faillock deny={pwpol.lockout_deny}", "faillock deny={pwpol.deny}")
    problems = lint(baseline_copy, catalogue)
    expect(problems, "OTA-HOST-009.yaml", line, "unknown fact path 'pwpol.unlock_time'")
    expect(problems, "OTA-HOST-009.yaml", msg_line, r"unknown fact path \{pwpol.deny\}")


def test_unknown_requirement_component_and_nis2_ids(baseline_copy, catalogue):
    f = check_file(baseline_copy, "OTA-SW-012")
    line = edit(f, "iec62443-3-3: [SR 1.12]", "iec62443-3-3: [SR 1.12, SR 1.99]")
    edit(f, "iec62443-4-2: [CR 1.12]", "iec62443-4-2: [CR 1.12, CR 9.1]")
    edit(f, 'nis2: ["21(2)(g)"]', 'nis2: ["21(2)(g)", "21(2)(k)"]')
    problems = lint(baseline_copy, catalogue)
    expect(problems, "OTA-SW-012.yaml", line, "unknown IEC 62443-3-3 SR/RE id 'SR 1.99'")
    expect(problems, "OTA-SW-012.yaml", line + 1, "unknown IEC 62443-4-2 CR id 'CR 9.1'")
    expect(problems, "OTA-SW-012.yaml", line + 2,
           r"unknown NIS2 Art. 21\(2\) point id '21\(2\)\(k\)'")


def test_bad_levels_in_parameters(baseline_copy, catalogue):
    f = check_file(baseline_copy, "OTA-S7-001")
    line = edit(f, "min_protection: {1: 2, 2: 2, 3: 3, 4: 3}", "min_protection: {1: 2, 2: 2, 5: 3}")
    expect(lint(baseline_copy, catalogue), "OTA-S7-001.yaml", line,
           r"bad levels \[1, 2, 5\]")


def test_bad_levels_in_catalogue(baseline_copy, catalogue):
    f = baseline_copy / "catalogue" / "iec62443-3-3.yaml"
    text = f.read_text()
    start = text.index("id: SR 2.6")
    old = text[start: text.index("\n", text.index("sl:", start)) + 1]
    line = edit(f, old, old.replace("sl: [2, 3, 4]", "sl: [2, 4]")) + 2
    expect(lint(baseline_copy, catalogue), "iec62443-3-3.yaml", line, r"SR 2.6: bad levels")


def test_duplicate_check_id(baseline_copy, catalogue):
    src = check_file(baseline_copy, "OTA-SW-012")
    (src.parent / "OTA-SW-012b.yaml").write_text(src.read_text())
    problems = lint(baseline_copy, catalogue)
    expect(problems, "OTA-SW-012b.yaml", 2, r"duplicate check id 'OTA-SW-012' \(first "
           r"defined in .*OTA-SW-012.yaml:2\)")


def test_file_name_must_match_id(baseline_copy, catalogue):
    src = check_file(baseline_copy, "OTA-SW-012")
    src.rename(src.parent / "banner.yaml")
    expect(lint(baseline_copy, catalogue), "banner.yaml", 2, "differs from its file name")


def test_undefined_and_unused_parameters(baseline_copy, catalogue):
    f = check_file(baseline_copy, "OTA-HOST-004")
    line = edit(f, "  value: $max_auth_tries\n", "  value: $max_tries\n")
    unused = edit(f, "  max_auth_tries:", "  spare: 3\n  max_auth_tries:")
    problems = lint(baseline_copy, catalogue)
    expect(problems, "OTA-HOST-004.yaml", line, r"undefined parameter '\$max_tries'")
    expect(problems, "OTA-HOST-004.yaml", unused, "parameter 'spare' is never used")
    assert not problems_at(problems, "OTA-HOST-004.yaml", line - 1), "no type noise"


def test_exists_only_in_gates(baseline_copy, catalogue):
    f = check_file(baseline_copy, "OTA-SW-012")
    line = edit(f, "  op: eq\n  value: true\n", "  op: exists\n")
    expect(lint(baseline_copy, catalogue), "OTA-SW-012.yaml", line,
           "`exists` is only allowed in applies_to.when")


def test_operator_does_not_fit_fact_type(baseline_copy, catalogue):
    f = check_file(baseline_copy, "OTA-SW-012")
    line = edit(f, "  op: eq\n  value: true\n", "  op: eq\n  value: \"yes\"\n")
    expect(lint(baseline_copy, catalogue), "OTA-SW-012.yaml", line,
           "boolean fact is compared with 'yes'")
    f = check_file(baseline_copy, "OTA-INV-001")
    line = edit(f, "- {fact: identity.firmware_version, op: regex, value: '\\S'}",
                "- {fact: identity.firmware_version, op: ge, value: V4.5}")
    expect(lint(baseline_copy, catalogue), "OTA-INV-001.yaml", line,
           "compare versions with `as: version`")


def test_controls_and_references_must_agree(baseline_copy, catalogue):
    controls = baseline_copy / "controls" / "iec62443-3-3.yaml"
    line = edit(controls, "checks: [OTA-SW-012]", "checks: [OTA-SW-012, OTA-SW-011, OTA-XX-001]")
    problems = lint(baseline_copy, catalogue)
    expect(problems, "iec62443-3-3.yaml", line, "SR 1.12 lists OTA-SW-011, which does not "
           "reference SR 1.12")
    expect(problems, "iec62443-3-3.yaml", line, "unknown check 'OTA-XX-001'")
    f = check_file(baseline_copy, "OTA-SW-003")
    ref_line = edit(f, "iec62443-3-3: [SR 4.3]", "iec62443-3-3: [SR 4.3, SR 4.1]")
    expect(lint(baseline_copy, catalogue), "OTA-SW-003.yaml", ref_line,
           "OTA-SW-003 references SR 4.1 but controls")


def test_every_requirement_needs_a_control(baseline_copy, catalogue):
    controls = baseline_copy / "controls" / "iec62443-3-3.yaml"
    text = controls.read_text()
    start = text.index("  - id: SR 5.4\n")
    end = text.index("  # FR6", start)
    controls.write_text(text[:start] + text[end:])
    expect(lint(baseline_copy, catalogue), "iec62443-3-3.yaml", None,
           "SR 5.4 is missing from the controls file")
    line = edit(controls, "  - id: SR 5.3\n    attestation: true\n", "  - id: SR 5.3\n")
    expect(lint(baseline_copy, catalogue), "iec62443-3-3.yaml", line,
           "SR 5.3: no checks; mark it `attestation: true`")


def test_fixture_problems(baseline_copy, catalogue):
    (baseline_copy / "tests" / "OTA-SW-012.yaml").unlink()
    fx = baseline_copy / "tests" / "OTA-SW-011.yaml"
    line = edit(fx, "  - name: not a switch\n    kind: hmi\n    expect: not_applicable\n",
                "  - name: typo\n    facts: {snmp.comunities: []}\n    expect: pass\n")
    problems = lint(baseline_copy, catalogue)
    expect(problems, "OTA-SW-012.yaml", 2, "OTA-SW-012 has no fixtures")
    expect(problems, "OTA-SW-011.yaml", None, "no case expecting 'not_applicable'")
    expect(problems, "OTA-SW-011.yaml", line + 1, "unknown fact path 'snmp.comunities'")


def test_load_baseline_raises_input_error_with_file_and_line(baseline_copy):
    f = check_file(baseline_copy, "OTA-S7-002")
    line = edit(f, "iec62443-3-3: [SR 1.1, SR 2.1]", "iec62443-3-3: [SR 1.1, SR 2.1, SR 8.1]")
    with pytest.raises(InputError) as err:
        load_baseline(baseline_copy)
    assert any(f"OTA-S7-002.yaml:{line}: unknown IEC 62443-3-3 SR/RE id 'SR 8.1'" in p
               for p in err.value.problems)


def _patch_catalogue(monkeypatch):
    import otaudit.probes
    monkeypatch.setattr(otaudit.probes, "fact_catalogue", docs_catalogue)


def test_cli_lint(baseline_copy, monkeypatch):
    from otaudit.cli.main import app
    _patch_catalogue(monkeypatch)
    runner = CliRunner()
    ok = runner.invoke(app, ["baseline", "lint", "--root", str(baseline_copy)])
    assert ok.exit_code == 0, ok.output
    assert "baseline ok" in ok.output
    f = check_file(baseline_copy, "OTA-S7-002")
    line = edit(f, "  fact: s7.password_set\n", "  fact: s7.nope\n")
    bad = runner.invoke(app, ["baseline", "lint", "--root", str(baseline_copy)])
    assert bad.exit_code == 1
    assert f"OTA-S7-002.yaml:{line}: unknown fact path 's7.nope'" in bad.output
