"""Drift between audits: what changed from one observation of an asset endpoint to the next.

``compare`` (pure: which facts changed and how), ``policy`` (``must_not_drift`` of a baseline
with maintenance windows), ``events`` (the ``drift_events`` table, detection at ingest in the
storing transaction, listing for ``otaudit drift``).
"""
