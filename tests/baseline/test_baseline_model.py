"""The evaluator's outputs honour the model contract; evaluation stays fast."""

from __future__ import annotations

from baseline_testkit import NOW
from bench_evaluate import measure, plant

from otaudit.server.baseline import evaluate, load_baseline
from otaudit.server.baseline.model import Evaluation, EvidenceItem, Finding


def test_findings_are_complete_valid_models():
    ev = evaluate(load_baseline(), {f"z{k}": 2 for k in range(5)}, plant(30), now=NOW)
    assert ev.findings
    for finding in ev.findings:
        assert set(finding.__dict__) == set(Finding.model_fields)
        assert Finding.model_validate(finding.model_dump()).model_dump() == finding.model_dump()
        for item in finding.evidence:
            assert set(item.__dict__) == set(EvidenceItem.model_fields)
    again = Evaluation.model_validate_json(ev.model_dump_json())
    assert again.to_dict() == ev.to_dict()
    assert ev.zone("z1").sl_a.keys() == {"IAC", "UC", "SI", "DC", "RDF", "TRE", "RA"}


def test_a_thousand_assets_evaluate_quickly():
    seconds, findings = measure(1000, repeat=2)
    assert findings > 10_000
    # typically 0.3-0.5 s on one core; the bound only catches accidental quadratic work
    assert seconds < 8, f"{seconds:.2f} s"
