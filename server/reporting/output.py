"""One place that turns a ``report_document`` into each output format and writes it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from otaudit.errors import InputError

if TYPE_CHECKING:
    from otaudit.server.baseline.loader import Baseline

FORMATS = ("table", "json", "html", "pdf", "sarif", "oscal", "csv")
NEEDS_OUT = {"pdf": "a PDF file", "csv": "a folder for findings.csv, requirements.csv, "
                                         "patches.csv and inventory.csv"}


def check_format(fmt: str, out: Path | None) -> None:
    """InputError for an unknown format or a binary/multi-file format without ``--out``."""
    if fmt not in FORMATS:
        raise InputError("--format", [f"{fmt!r}: expected one of {', '.join(FORMATS)}"])
    if fmt in NEEDS_OUT and out is None:
        raise InputError("--out", [f"--format {fmt} writes {NEEDS_OUT[fmt]}: give --out PATH"])


def render_text(document: dict[str, Any], fmt: str, baseline: Baseline) -> str:
    """The text formats (table, json, html, sarif, oscal)."""
    if fmt == "table":
        from otaudit.server.report import render_table

        return render_table(document)
    if fmt == "json":
        return json.dumps(document, indent=2, default=str)
    if fmt == "html":
        from otaudit.server.reporting.html import render_html

        return render_html(document)
    if fmt == "sarif":
        from otaudit.server.reporting.machine import sarif_log

        return json.dumps(sarif_log(document, baseline.checks), indent=2, default=str)
    if fmt == "oscal":
        from otaudit.server.reporting.machine import oscal_assessment_results

        return json.dumps(oscal_assessment_results(document), indent=2, default=str)
    raise ValueError(f"{fmt} is not a text format")


def write_output(document: dict[str, Any], fmt: str, out: Path, baseline: Baseline
                 ) -> list[Path]:
    """Write ``fmt`` to ``out`` (a file; a folder for csv); return the files written."""
    check_format(fmt, out)
    if fmt == "pdf":
        from otaudit.server.reporting.html import render_html
        from otaudit.server.reporting.pdf import render_pdf

        data = render_pdf(render_html(document))
        out.write_bytes(data)
        return [out]
    if fmt == "csv":
        from otaudit.server.reporting.machine import csv_tables

        if out.exists() and not out.is_dir():
            raise InputError("--out", [f"{out}: --format csv writes a folder; this is a file"])
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name, text in csv_tables(document).items():
            (out / name).write_text(text, encoding="utf-8")
            written.append(out / name)
        return written
    out.write_text(render_text(document, fmt, baseline), encoding="utf-8")
    return [out]
