"""The real-device corpus tests: marker ``realdata``; the agreement table is printed at the end."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "snmp"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.realdata.librenms import REPORTS


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "realdata: replays real device recordings from "
                                       "../shared and compares with an independent oracle")


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    for report in REPORTS:
        terminalreporter.write_sep("=", "LibreNMS corpus: otaudit vs LibreNMS identity")
        terminalreporter.write_line(report)
