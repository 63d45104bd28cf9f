"""IEC 62443-3-3 baseline engine: checks as data, zones with SL-T, SL-A per FR, gaps.

    from otaudit.server.baseline import load_baseline, evaluate
    baseline = load_baseline()                      # bundled baselines/
    evaluation = evaluate(baseline, zones, assets, exceptions=..., attestations=..., now=...)
"""

from otaudit.server.baseline.evaluator import evaluate, evaluate_check
from otaudit.server.baseline.loader import Baseline, bundled_root, load_baseline, read_baseline
from otaudit.server.baseline.model import Evaluation, Finding, ZoneResult
from otaudit.server.baseline.waivers import (
    Attestation,
    ExceptionRecord,
    load_attestations,
    load_exceptions,
)

__all__ = [
    "Attestation",
    "Baseline",
    "Evaluation",
    "ExceptionRecord",
    "Finding",
    "ZoneResult",
    "bundled_root",
    "evaluate",
    "evaluate_check",
    "load_attestations",
    "load_baseline",
    "load_exceptions",
    "read_baseline",
]
