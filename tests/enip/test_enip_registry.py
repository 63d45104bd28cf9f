"""A new probe is one folder and one registry line: the baseline loader finds it too."""

from __future__ import annotations

from otaudit.probes import COLLECTOR_PROBES, REGISTRY, fact_catalogue
from otaudit.server.baseline.loader import known_probes


def test_known_probes_of_the_baseline_loader_are_the_registry():
    assert set(known_probes()) == set(REGISTRY) | set(COLLECTOR_PROBES)
    assert "enip" in known_probes()


def test_enip_facts_are_in_the_catalogue():
    catalogue = fact_catalogue()
    assert catalogue["enip.cip_security"].type == "bool"
    assert catalogue["enip.session_accepted"].type == "bool"
