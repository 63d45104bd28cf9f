"""The PDF: the HTML report laid out for print by WeasyPrint (HTML/CSS to PDF, no browser).

WeasyPrint needs Pango (``libpango-1.0-0``, ``libpangoft2-1.0-0``) from the system; when
they are missing the import fails inside cffi with an OSError, turned here into a
``StateError`` that says what to install (README, .ci/run).
"""

from __future__ import annotations

from pathlib import Path

from otaudit.errors import StateError

INSTALL_HINT = ("install the system libraries WeasyPrint needs: apt-get install "
                "libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core (README: report)")


def _weasyprint():
    try:
        import weasyprint
    except (OSError, ImportError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StateError(f"cannot write a PDF: WeasyPrint cannot load ({first})",
                         hint=INSTALL_HINT) from None
    return weasyprint


def render_pdf(html: str, out: Path | None = None) -> bytes:
    """PDF bytes of the HTML report (also written to ``out`` when given). The HTML is
    self-contained, so no URL is fetched: the fetcher refuses every request."""
    weasyprint = _weasyprint()

    def no_fetch(url: str, *args: object, **kwargs: object) -> dict:
        raise ValueError(f"the report must not fetch {url}")

    data = weasyprint.HTML(string=html, url_fetcher=no_fetch).write_pdf()
    if out is not None:
        Path(out).write_bytes(data)
    return data
