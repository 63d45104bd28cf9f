"""Graded advisory cases (graded_cases.yaml): precision and recall of "affected", review share.

Every case is one device against one real advisory of the CISA corpus in ../shared (read from
the archive; skipped when it is absent). Per (case, CVE) the expected outcome is ``affected``,
``needs_review`` or clear (``fixed`` / ``not_affected`` / no verdict). The summary test prints
the figures and lists every disagreement; each case is also a test of its own.
"""

from __future__ import annotations

import functools
import json
import tarfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from otaudit.server.advisories import csaf
from otaudit.server.advisories.matcher import AdvisoryIndex, Identity, Verdict
from otaudit.server.advisories.normalise import normalise
from otaudit.server.advisories.versions import compare, parse_version

HERE = Path(__file__).parent
CASES: list[dict[str, Any]] = yaml.safe_load((HERE / "graded_cases.yaml").read_text())
CLASSES = {"family", "model_list", "variant_suffix", "size_named_panel", "name_alias",
           "scoping_prose", "product_line", "exact_list"}
MEMBER = "cisa-ot-csaf/{}.json"


@functools.cache
def _documents(archive: Path) -> dict[str, dict[str, Any]]:
    wanted = {MEMBER.format(c["advisory"]) for c in CASES}
    out = {}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            if member.name in wanted:
                reader = tar.extractfile(member)
                assert reader is not None
                out[member.name] = json.loads(reader.read())
    return out


@functools.cache
def _index(archive: Path, advisory: str) -> AdvisoryIndex:
    doc = _documents(archive)[MEMBER.format(advisory)]
    assert csaf.validate(doc) == []
    return AdvisoryIndex([normalise(doc)])


@pytest.fixture
def archive(shared_dir: Path) -> Path:
    path = shared_dir / "advisories" / "corpus" / "cisa-ot-csaf.tar.gz"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return path


def _cves(doc: dict[str, Any]) -> list[str]:
    return [v.get("cve") or f"(no CVE #{i + 1})" for i, v in enumerate(doc["vulnerabilities"])]


def _kind(verdict: Verdict | None) -> str:
    if verdict is None or verdict.verdict in ("fixed", "not_affected"):
        return "clear"
    return verdict.verdict


def _same_version(got: str | None, want: str | None) -> bool:
    """``V15.1 HF001`` is ``15.1 HF001``: compared as versions, not as spellings."""
    if got is None or want is None:
        return got == want
    a, b = parse_version(got), parse_version(want)
    return a is not None and b is not None and compare(a, b) == 0


def grade(case: dict[str, Any], archive: Path) -> list[dict[str, Any]]:
    """One row per CVE of the case's advisory: expected, got, and the verdict's reason."""
    doc = _documents(archive)[MEMBER.format(case["advisory"])]
    got = {v.cve: v for v in _index(archive, case["advisory"]).match(Identity(**case["device"]))}
    expected: dict[str, dict[str, Any]] = {}
    for group in case.get("expect") or []:
        for cve in group["cves"]:
            expected[cve] = group
    unknown = set(expected) - set(_cves(doc))
    assert not unknown, f"{case['id']}: {sorted(unknown)} are not in {case['advisory']}"
    rows = []
    for cve in _cves(doc):
        group = expected.get(cve, {"verdict": "clear"})
        want = "clear" if group["verdict"] in ("fixed", "not_affected") else group["verdict"]
        verdict = got.get(cve)
        problems = []
        if _kind(verdict) != want:
            problems.append(f"expected {want}, got {_kind(verdict)}")
        elif want == "affected" and "fixed_in" in group and verdict is not None \
                and not _same_version(verdict.fixed_in, group["fixed_in"]):
            problems.append(f"fixed_in {verdict.fixed_in!r}, expected {group['fixed_in']!r}")
        rows.append({"case": case["id"], "cve": cve, "want": want, "got": _kind(verdict),
                     "problems": problems,
                     "reason": verdict.reason if verdict is not None else "no verdict"})
    return rows


def test_case_set_shape() -> None:
    assert len(CASES) >= 60
    assert len({c["id"] for c in CASES}) == len(CASES)
    assert all(c.get("why") and c.get("classes") and c.get("device") for c in CASES)
    covered = {k for c in CASES for k in c["classes"]}
    assert covered >= CLASSES, f"classes without a case: {sorted(CLASSES - covered)}"
    assert len({c["vendor_group"] for c in CASES}) >= 12


def test_graded_summary(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Precision / recall of "affected" and the needs_review share over every (case, CVE)."""
    rows = [row for case in CASES for row in grade(case, archive)]
    counts = Counter((r["want"], r["got"]) for r in rows)
    tp = counts[("affected", "affected")]
    fp = sum(n for (w, g), n in counts.items() if g == "affected" and w != "affected")
    fn = sum(n for (w, g), n in counts.items() if w == "affected" and g != "affected")
    review = sum(n for (_, g), n in counts.items() if g == "needs_review")
    review_ok = counts[("needs_review", "needs_review")]
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    cases_ok = sum(all(not r["problems"] for r in grade(c, archive)) for c in CASES)
    bad = [r for r in rows if r["problems"]]
    with capsys.disabled():
        print(f"\ngraded advisory cases: {len(CASES)} cases, {len(rows)} (case, CVE) pairs; "
              f"cases fully right {cases_ok}/{len(CASES)}")
        print(f"affected: TP {tp}, FP {fp}, FN {fn}; precision {precision:.3f}, "
              f"recall {recall:.3f}")
        print(f"needs_review: {review}/{len(rows)} pairs ({review / len(rows):.1%}), "
              f"{review_ok} of them expected")
        for r in bad:
            print(f"  {r['case']} {r['cve']}: {'; '.join(r['problems'])} — {r['reason'][:300]}")
    assert fp == 0 and fn == 0, f"{fp} false positives, {fn} false negatives"
    assert not bad, f"{len(bad)} (case, CVE) pairs disagree"


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_graded_case(case: dict[str, Any], archive: Path) -> None:
    rows = grade(case, archive)
    bad = [f"{r['cve']}: {'; '.join(r['problems'])} ({r['reason']})" for r in rows
           if r["problems"]]
    assert not bad, "\n".join(bad)
