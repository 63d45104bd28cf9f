from __future__ import annotations

import pytest

from otaudit.cli.flags import parse_extra_flags
from otaudit.errors import InputError


def test_flags_values_switches_and_equals() -> None:
    assert parse_extra_flags(["--unit", "2", "--allow-legacy", "--rack=0"]) == {
        "unit": "2", "allow-legacy": True, "rack": "0"}


def test_stray_argument_is_an_error() -> None:
    with pytest.raises(InputError, match="unexpected argument 'oops'"):
        parse_extra_flags(["oops"])
