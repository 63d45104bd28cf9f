"""modules.yaml and equivalent.yaml stay true to the code they name (issue 23)."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def test_every_listed_module_and_test_file_exists() -> None:
    modules = yaml.safe_load((HERE / "modules.yaml").read_text())["modules"]
    assert modules
    for module, tests in modules.items():
        assert (REPO / module).is_file(), module
        assert tests, module
        for test in tests:
            assert (REPO / test).is_file(), f"{module}: {test}"


def test_every_equivalent_mutant_names_a_line_of_its_function() -> None:
    """A stale entry (line changed, function renamed) must not hide a new survivor."""
    entries = yaml.safe_load((HERE / "equivalent.yaml").read_text())["equivalent"]
    modules = yaml.safe_load((HERE / "modules.yaml").read_text())["modules"]
    for entry in entries:
        assert set(entry) <= {"module", "definition", "operator", "source", "mutant", "reason"}
        assert entry["module"] in modules, entry
        assert entry["operator"].startswith("core/") and len(entry["reason"]) > 40, entry
        text = (REPO / entry["module"]).read_text()
        functions = {node.name: node for node in ast.walk(ast.parse(text))  # or a class body
                     if isinstance(node, ast.FunctionDef | ast.ClassDef)}
        body = text.splitlines()
        if "definition" in entry:  # else a module-level line
            assert entry["definition"] in functions, entry
            node = functions[entry["definition"]]
            body = body[node.lineno - 1:node.end_lineno]
        assert entry["source"].strip() in [line.strip() for line in body], entry
        if "mutant" in entry:
            assert entry["mutant"].strip() != entry["source"].strip(), entry
