"""Pieces of the deliverable on their own: the PDF's missing-library error, charts, CSV cells,
the roadmap's order."""

from __future__ import annotations

import sys

import pytest

from otaudit.errors import ExitCode, StateError
from otaudit.server.reporting.charts import fr_chart
from otaudit.server.reporting.machine import _cell
from otaudit.server.reporting.roadmap import zone_roadmap

FRS = ("IAC", "UC", "SI", "DC", "RDF", "TRE", "RA")


def test_missing_weasyprint_libraries_is_a_state_error_naming_them(monkeypatch) -> None:
    from otaudit.server.reporting import pdf

    class Broken:  # what cffi raises when libpango is not installed
        def find_spec(self, name, path=None, target=None):
            if name == "weasyprint":
                raise OSError("cannot load library 'libpango-1.0-0': libpango-1.0-0: cannot "
                              "open shared object file: No such file or directory")
            return None

    monkeypatch.delitem(sys.modules, "weasyprint", raising=False)
    monkeypatch.setattr(sys, "meta_path", [Broken(), *sys.meta_path])
    with pytest.raises(StateError) as caught:
        pdf.render_pdf("<p>x</p>")
    assert caught.value.exit_code == ExitCode.STATE
    assert "libpango-1.0-0" in str(caught.value) and "apt-get install" in str(caught.value)


def test_chart_escapes_zone_names_and_shows_every_value() -> None:
    zone = {"zone": "<z&1>", "sl_t": dict.fromkeys(FRS, 2), "sl_a": dict.fromkeys(FRS, 0),
            "sl_reachable": dict.fromkeys(FRS, 4)}
    svg = str(fr_chart(zone))
    assert "<z&1>" not in svg and "&lt;z&amp;1&gt;" in svg
    assert svg.count("<rect") == 3 * 7 + 3  # three bars per FR and the legend
    assert "<script" not in svg


@pytest.mark.parametrize(("value", "cell"), [("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
                                             ("+1+1", "'+1+1"), ("-5", "-5"), ("@x", "'@x"),
                                             ("plain", "plain"), (3.5, "3.5")])
def test_csv_cells_never_start_a_formula(value, cell) -> None:
    assert _cell(value) == cell


def _row(rid, fr, status, sl=(1, 2, 3, 4), parent=None):
    return {"id": rid, "fr": fr, "sl": list(sl), "parent": parent, "in_target": True,
            "satisfied": status == "pass", "status": status,
            "levels": {str(n): status for n in sl}}


def test_roadmap_orders_by_sl_gain_and_names_requirements_and_assets() -> None:
    rows = [_row("SR 1.1", "IAC", "fail"), _row("SR 1.2", "IAC", "unknown"),
            _row("SR 2.1", "UC", "fail"), _row("SR 2.1 RE 1", "UC", "pass", (3, 4), "SR 2.1")]
    failing = [
        {"id": "SR 1.1", "why": [{"source": "check", "id": "C-A", "status": "fail",
                                  "assets": ["plc-1"]}]},
        {"id": "SR 1.2", "why": [{"source": "none", "status": "unknown"}]},
        {"id": "SR 2.1", "why": [{"source": "check", "id": "C-B", "status": "fail",
                                  "assets": ["plc-2", "plc-3"]},
                                 {"source": "check", "id": "C-A", "status": "fail",
                                  "assets": ["plc-1"]}]},
    ]
    zone = {"zone": "z", "requirements": rows, "failing": failing}
    steps = zone_roadmap(zone, {})
    # No single action raises an SL first: C-A closes SR 1.1 (and is more severe than the
    # attestation, which closes SR 1.2); then C-B closes SR 2.1: UC 0 -> 4 (with its RE);
    # then the attestation: IAC 0 -> 4
    assert [s["kind"] for s in steps] == ["fix", "fix", "attest"]
    assert steps[0]["title"].startswith("C-A") and steps[0]["raises"] == {}
    assert steps[1]["title"].startswith("C-B") and steps[1]["raises"] == {"UC": [0, 4]}
    assert steps[2]["raises"] == {"IAC": [0, 4]}
    by_key = {s["title"].split(":")[0]: s for s in steps}
    assert by_key["C-A"]["requirements"] == ["SR 1.1", "SR 2.1"]
    assert by_key["C-A"]["assets"] == ["plc-1"]
    assert by_key["C-B"]["assets"] == ["plc-2", "plc-3"]
    assert steps[-1]["sl_a_after"]["IAC"] == 4 and steps[-1]["sl_a_after"]["UC"] == 4
    closed = [r for s in steps for r in s["closes"]]
    assert sorted(closed) == ["SR 1.1", "SR 1.2", "SR 2.1"]
    assert any(s["kind"] == "attest" and s["requirements"] == ["SR 1.2"] for s in steps)
