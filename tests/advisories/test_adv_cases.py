"""Device/firmware cases against real CSAF advisories (cases.yaml holds the reasoning)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from otaudit.server.advisories import csaf
from otaudit.server.advisories.matcher import AdvisoryIndex, Identity
from otaudit.server.advisories.normalise import normalise

HERE = Path(__file__).parent
FIXTURES = HERE.parent / "fixtures" / "csaf"
CASES: list[dict[str, Any]] = yaml.safe_load((HERE / "cases.yaml").read_text())


@functools.cache
def _index(path: str) -> AdvisoryIndex:
    doc = json.loads(Path(path).read_text())
    assert csaf.validate(doc) == []
    return AdvisoryIndex([normalise(doc)])


def _advisory_path(name: str, shared_only: bool, request: pytest.FixtureRequest) -> Path:
    local = FIXTURES / name
    if local.is_file() and not shared_only:
        return local
    shared = request.getfixturevalue("shared_dir") / "advisories" / "csaf" / name
    if not shared.is_file():
        pytest.skip(f"{shared} is absent")
    return shared


def test_there_are_at_least_15_cases() -> None:
    assert len(CASES) >= 15
    assert len({c["id"] for c in CASES}) == len(CASES)
    assert all(c.get("why") for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case(case: dict[str, Any], request: pytest.FixtureRequest) -> None:
    path = _advisory_path(case["advisory"], case.get("shared_only", False), request)
    verdicts = {v.cve: v for v in _index(str(path)).match(Identity(**case["device"]))}
    expected = dict(case.get("expect", {}))
    for cve in case.get("cves", []):
        expected[cve] = case["expect_all"]
    assert set(verdicts) == set(expected), f"CVEs: {sorted(verdicts)}"
    for cve, want in expected.items():
        got = verdicts[cve]
        assert got.verdict == want["verdict"], f"{cve}: {got.reason}"
        if "fixed_in" in want:
            assert got.fixed_in == want["fixed_in"], f"{cve}: {got.reason}"
        if "product_id" in want:
            assert got.product_id == want["product_id"], f"{cve}: {got.reason}"
        if "basis" in want:
            assert got.basis.split("+")[0] == want["basis"], f"{cve}: {got.reason}"
        assert got.reason and got.product_id in got.reason and got.expression in got.reason


def test_vendor_converted_files_are_not_copied() -> None:
    """Advisories converted from a vendor's CSAF carry vendor terms: read from ../shared only."""
    for path in FIXTURES.glob("*.json"):
        assert "was converted from" not in path.read_text(), path.name
