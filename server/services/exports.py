"""The deliverables: the gap report (HTML) and the signed evidence package of a site."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from otaudit.server.services.policy import Policy


def report_html(session: Session, site: str, baseline: Any, policy: Policy,
                zone: str | None = None) -> str:
    """The gap report of ``site`` as one self-contained HTML page (``otaudit report
    --format html``)."""
    from otaudit.server.reporting.context import report_document
    from otaudit.server.reporting.html import render_html

    return render_html(report_document(session, baseline=baseline, zone=zone, site=site,
                                       exceptions_file=policy.exceptions_file,
                                       attestations_file=policy.attestations_file))


def evidence_package(session: Session, site: str, baseline: Any, policy: Policy,
                     key_file: Path, zone: str | None = None) -> bytes:
    """The signed evidence package (``otaudit evidence export``) as zip bytes."""
    from otaudit.server.reporting.evidence import export_evidence
    from otaudit.signing import load_private_key

    return export_evidence(session, site=site, zone=zone, baseline=baseline,
                           key=load_private_key(key_file),
                           exceptions_file=policy.exceptions_file,
                           attestations_file=policy.attestations_file)
