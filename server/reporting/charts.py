"""SVG charts drawn here, embedded in the report: no library, no script, print-friendly.

Every chart is a self-contained ``<svg>`` element with a ``<title>`` and text labels, so a
reader (or a screen reader, or pdftotext) sees the numbers, not only the shapes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup, escape

FRS = ("IAC", "UC", "SI", "DC", "RDF", "TRE", "RA")
SERIES = {  # key -> (label, fill, stroke)
    "sl_t": ("SL-T (target)", "#ffffff", "#444444"),
    "sl_a": ("SL-A proven", "#1f4e79", "#1f4e79"),
    "sl_reachable": ("SL-A reachable", "#9dc3e6", "#2e75b6"),
}
STATUS_COLOURS = {"fail": "#c00000", "capability_gap": "#ed7d31", "unknown": "#a5a5a5",
                  "compensated": "#ffc000", "attested": "#70ad47", "pass": "#548235",
                  "not_applicable": "#d9d9d9"}


def _text(value: object) -> str:
    """Escaped text as a plain str (adding a Markup to a str would escape the str too)."""
    return str(escape(str(value)))


def fr_chart(zone: Mapping[str, Any], series: Sequence[str] = ("sl_t", "sl_a", "sl_reachable"),
             width: int = 640, height: int = 210) -> Markup:
    """Grouped bars per FR (0..4) for the given series of a zone."""
    left, right, top, bottom = 34, 8, 26, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    group = plot_w / len(FRS)
    bar = min(22.0, (group - 10) / len(series))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" role="img">',
             f"<title>{_text(zone['zone'])}: "
             + _text("; ".join(f"{fr} " + "/".join(str(zone[s].get(fr, 0)) for s in series)
                               for fr in FRS)) + "</title>"]
    for level in range(5):
        y = top + plot_h - plot_h * level / 4
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" '
                     f'stroke="#e0e0e0" stroke-width="1"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" '
                     f'font-size="10">{level}</text>')
    for i, fr in enumerate(FRS):
        x0 = left + i * group + (group - bar * len(series)) / 2
        for j, key in enumerate(series):
            value = int(zone[key].get(fr, 0))
            _, fill, stroke = SERIES[key]
            h = plot_h * value / 4
            x, y = x0 + j * bar, top + plot_h - h
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar - 2:.1f}" '
                         f'height="{max(h, 0.5):.1f}" fill="{fill}" stroke="{stroke}" '
                         f'stroke-width="1.2"/>')
            parts.append(f'<text x="{x + (bar - 2) / 2:.1f}" y="{y - 3:.1f}" font-size="9" '
                         f'text-anchor="middle">{value}</text>')
        parts.append(f'<text x="{left + i * group + group / 2:.1f}" y="{top + plot_h + 14}" '
                     f'text-anchor="middle" font-size="11" font-weight="bold">{fr}</text>')
    x = left
    for key in series:
        label, fill, stroke = SERIES[key]
        parts.append(f'<rect x="{x}" y="6" width="12" height="10" fill="{fill}" '
                     f'stroke="{stroke}"/>')
        parts.append(f'<text x="{x + 16}" y="15" font-size="10">{escape(label)}</text>')
        x += 22 + 6 * len(label)
    parts.append(f'<text x="{left}" y="{height - 4}" font-size="9" fill="#555555">Security '
                 'level per foundational requirement (0-4)</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def status_bar(counts: Mapping[str, int], width: int = 640, height: int = 46) -> Markup:
    """One horizontal bar split by finding status, with a legend of the counts."""
    order = [s for s in STATUS_COLOURS if counts.get(s)]
    total = sum(counts.get(s, 0) for s in order) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" role="img">',
             "<title>findings: " + _text(", ".join(f"{s} {counts[s]}" for s in order))
             + "</title>"]
    x = 0.0
    for status in order:
        w = width * counts[status] / total
        parts.append(f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="18" '
                     f'fill="{STATUS_COLOURS[status]}"/>')
        x += w
    x = 0.0
    for status in order:
        label = f"{status.replace('_', ' ')} {counts[status]}"
        parts.append(f'<rect x="{x:.1f}" y="28" width="10" height="10" '
                     f'fill="{STATUS_COLOURS[status]}"/>')
        parts.append(f'<text x="{x + 13:.1f}" y="37" font-size="10">{escape(label)}</text>')
        x += 22 + 6 * len(label)
    parts.append("</svg>")
    return Markup("".join(parts))
