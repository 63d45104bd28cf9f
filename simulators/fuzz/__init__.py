"""Fuzzing at the wire: a seeded mutating proxy (``proxy``) placed between a probe and a
simulator, with protocol-aware mutators (``mutators``). The campaign that drives probes
through it lives in ``tests/fuzz/campaign.py`` (``make fuzz``)."""
