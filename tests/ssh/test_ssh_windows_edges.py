"""Windows parsers at their edges (issue 23: survivors of the mutation slice of
probes/ssh/windows.py): what a bad boolean says, the two texts of a stopped time service."""

from __future__ import annotations

import json

import pytest

from otaudit.probes.base import ParseError
from otaudit.probes.ssh import windows
from otaudit.probes.ssh.parse.common import Unknown


@pytest.mark.parametrize(("value", "want"), [
    (True, True), (False, False), (1, True), (0, False), ("True", True), (" false ", False)])
def test_smb1_flag_spellings(value: object, want: bool) -> None:
    text = json.dumps({"EnableSMB1Protocol": value})
    assert windows.smb_facts(text) == {"win.smb1_enabled": want}


@pytest.mark.parametrize("value", [2, -1, "yes", None, "x" * 60])
def test_a_bad_boolean_names_the_field_and_at_most_forty_characters(value: object) -> None:
    text = json.dumps({"EnableSMB1Protocol": value})
    shown = repr(str(value)[:40])
    with pytest.raises(ParseError, match=r"^EnableSMB1Protocol: (.*) is not a boolean$") as caught:
        windows.smb_facts(text)
    assert str(caught.value) == f"EnableSMB1Protocol: {shown} is not a boolean"


@pytest.mark.parametrize("text", [
    "The following error occurred: The service has not been started. (0x80070426)",
    "The following error occurred: 0x80070426",
    "The following error occurred: The service has not been started.",
])
def test_either_text_of_a_stopped_time_service_means_not_synchronised(text: str) -> None:
    facts = windows.w32tm_facts(text)
    assert facts["time.synchronized"] is False and facts["time.ntp_sources"] == []
    assert isinstance(facts["time.source"], Unknown)


@pytest.mark.parametrize("count", [0, 2, 3])
def test_a_single_object_command_with_another_count_is_refused(count: int) -> None:
    text = json.dumps([{"EnableSMB1Protocol": False}] * count)
    with pytest.raises(ParseError, match=rf"expected one object, got {count}$"):
        windows.smb_facts(text)


@pytest.mark.parametrize("value", ["x" * 60, "12.5", "0x10"])
def test_a_bad_number_names_the_field_and_at_most_forty_characters(value: str) -> None:
    server = json.dumps({"fDenyTSConnections": value})
    shown = repr(str(value)[:40])
    with pytest.raises(ParseError) as caught:
        windows.rdp_facts(server, json.dumps({"UserAuthentication": 1}))
    assert str(caught.value) == f"fDenyTSConnections: {shown} is not a number"
