"""Properties of the evaluator (hypothesis).

* a missing fact never yields ``fail``: removing facts can only turn a result into
  ``unknown`` / ``not_applicable``, never create a ``fail`` or ``capability_gap``;
* what SL n+1 requires includes what SL n requires (selection and thresholds);
* results are deterministic in order and content (input order does not matter).
"""

from __future__ import annotations

from typing import Any

from baseline_testkit import NOW, asset, docs_catalogue
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otaudit.server.baseline import evaluate, evaluate_check, load_baseline
from otaudit.server.baseline.fixtures import load_fixtures
from otaudit.server.baseline.loader import condition_leaves

BASELINE = load_baseline()
FIXTURES = load_fixtures(BASELINE.root, [])
CATALOGUE = docs_catalogue()
BAD = {"fail", "capability_gap"}
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
ZONE_SETTINGS = settings(max_examples=40, deadline=None,
                         suppress_health_check=[HealthCheck.too_slow])


def _seen_values() -> dict[str, list[Any]]:
    seen: dict[str, list[Any]] = {}
    for fixture in FIXTURES.values():
        for case in fixture.file.cases:
            for path, value in case.facts.items():
                if value not in seen.setdefault(path, []):
                    seen[path].append(value)
    return seen


SEEN = _seen_values()
PATHS = {cid: sorted({leaf.fact for leaf, _, _ in condition_leaves(check) if leaf.fact})
         for cid, check in BASELINE.checks.items()}


def value_for(path: str) -> st.SearchStrategy[Any]:
    ftype = getattr(CATALOGUE.get(path), "type", "str")
    by_type: st.SearchStrategy[Any] = {
        "bool": st.booleans(),
        "int": st.integers(-1, 100_000),
        "list": st.lists(st.sampled_from(["telnet.socket", "ssh", "aes128-cbc", "x"]),
                         max_size=3),
    }.get(ftype, st.text(max_size=6))
    seen = SEEN.get(path)
    return st.one_of(st.sampled_from(seen), by_type) if seen else by_type


@st.composite
def check_and_facts(draw):
    cid = draw(st.sampled_from(sorted(BASELINE.checks)))
    facts = {}
    for path in PATHS[cid]:
        if draw(st.booleans()) or draw(st.booleans()):  # mostly present
            facts[path] = draw(value_for(path))
    check = BASELINE.checks[cid]
    kind = draw(st.sampled_from(check.applies_to.kinds or ["plc", "switch", "hmi"]))
    probes = dict.fromkeys(check.applies_to.probes or ["ssh"], "ok")
    return cid, kind, probes, facts


def status(cid, kind, probes, facts, level):
    return evaluate_check(BASELINE, cid, asset("a", kind, "z", facts, probes), level).status


@SETTINGS
@given(check_and_facts(), st.integers(1, 4), st.data())
def test_removing_facts_never_creates_a_failure(drawn, level, data):
    cid, kind, probes, facts = drawn
    full = status(cid, kind, probes, facts, level)
    kept = data.draw(st.sets(st.sampled_from(sorted(facts))) if facts else st.just(set()))
    partial = status(cid, kind, probes, {p: facts[p] for p in kept}, level)
    if partial in BAD:
        assert full == partial, (cid, facts, kept)
    assert status(cid, kind, probes, {}, level) not in BAD


@SETTINGS
@given(check_and_facts(), st.integers(1, 3))
def test_a_higher_level_never_demands_less(drawn, level):
    cid, kind, probes, facts = drawn
    lower = status(cid, kind, probes, facts, level)
    higher = status(cid, kind, probes, facts, level + 1)
    if higher == "pass":
        assert lower == "pass", (cid, facts, level)
    if lower in BAD:
        assert higher in BAD


def test_selection_is_cumulative():
    for req in BASELINE.requirements.values():
        assert list(req.sl) == list(range(req.sl[0], 5)), req.id
        if req.parent:
            assert set(req.sl) <= set(BASELINE.requirements[req.parent].sl)
    selected = [{r for r in BASELINE.requirements.values() if r.applies_at(n)} for n in range(1, 5)]
    checks = [{c for r in s for c in BASELINE.checks_for(r.id)} for s in selected]
    for n in range(3):
        assert selected[n] <= selected[n + 1] and checks[n] <= checks[n + 1]


@st.composite
def plant(draw):
    assets = []
    for i in range(draw(st.integers(1, 5))):
        _cid, kind, probes, facts = draw(check_and_facts())
        for _ in range(draw(st.integers(0, 3))):  # facts for further checks of the asset
            _, _, more_probes, more = draw(check_and_facts())
            facts = {**more, **facts}
            probes = {**more_probes, **probes}
        assets.append(asset(f"a{i}", kind, draw(st.sampled_from(["z1", "z2"])), facts, probes))
    return assets


@ZONE_SETTINGS
@given(plant(), st.integers(1, 3))
def test_zone_gaps_grow_with_the_target(assets, level):
    low = evaluate(BASELINE, {"z1": level, "z2": level}, assets, now=NOW)
    high = evaluate(BASELINE, {"z1": level + 1, "z2": level + 1}, assets, now=NOW)
    for zl, zh in zip(low.zones, high.zones, strict=True):
        assert {g.id for g in zl.failing} <= {g.id for g in zh.failing}
        assert zl.sl_a == zh.sl_a  # the achieved level does not depend on the target


@ZONE_SETTINGS
@given(plant(), st.randoms(use_true_random=False))
def test_evaluation_is_deterministic(assets, rnd):
    zones = {"z1": 2, "z2": {"IAC": 3, "UC": 1, "SI": 2, "DC": 1, "RDF": 1, "TRE": 2, "RA": 4}}
    first = evaluate(BASELINE, zones, assets, now=NOW).to_dict()
    shuffled = list(assets)
    rnd.shuffle(shuffled)
    reordered = dict(reversed(list(zones.items())))
    second = evaluate(BASELINE, reordered, shuffled, now=NOW).to_dict()
    assert first == second
    keys = [(f["zone"], f["asset_id"], f["check_id"]) for f in first["findings"]]
    assert keys == sorted(keys)
