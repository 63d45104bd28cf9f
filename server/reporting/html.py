"""The report as one self-contained HTML file (and the input of the PDF).

One Jinja2 template set (``templates/``) for screen and print: CSS inline, charts as inline
SVG, no script, no external reference (no font, image or style fetched from anywhere).
Everything that comes from a device or a file is escaped (autoescape).
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from otaudit.server.reporting.charts import FRS, fr_chart, status_bar


@cache
def environment() -> Environment:
    return Environment(loader=PackageLoader("otaudit.server.reporting", "templates"),
                       autoescape=select_autoescape(("html", "j2")),
                       trim_blocks=True, lstrip_blocks=True)


def stylesheet() -> str:
    return files("otaudit.server.reporting").joinpath("templates/report.css").read_text()


def render_html(document: dict[str, Any]) -> str:
    """The HTML report of a ``report_document``."""
    zones = document["zones"]
    charts = {
        "zone": {z["zone"]: fr_chart(z, ("sl_t", "sl_a", "sl_reachable"), 640, 170)
                 for z in zones},
        "zone_full": {z["zone"]: fr_chart(z) for z in zones},
        "findings": status_bar(document["summary"]["findings"]),
    }
    return environment().get_template("report.html.j2").render(
        **document, charts=charts, css=stylesheet(), frs=FRS)
