"""Pure parts of the WinRM path: command encoding, CLIXML, the responder's SOAP reader,
and the layering (the probe and the simulator never import each other)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from otaudit.probes.ssh.allowlist import ALLOWLIST
from otaudit.probes.winrm.client import POWERSHELL, POWERSHELL_ARGS, clixml_text, encode_command
from otaudit.simulators.winrm import soap
from otaudit.simulators.winrm.device import clixml, decode_powershell

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("command", ALLOWLIST["windows"])
def test_every_allowlisted_command_survives_the_encoding(command: str) -> None:
    assert decode_powershell(POWERSHELL, [*POWERSHELL_ARGS, encode_command(command)]) == command


def test_only_the_encoded_powershell_form_is_decoded() -> None:
    encoded = encode_command("net accounts")
    assert decode_powershell("C:\\Windows\\System32\\powershell.exe", ["-enc", encoded]) \
        == "net accounts"
    for executable, args in (("cmd.exe", ["/c", "net accounts"]),
                             ("powershell.exe", ["-Command", "net accounts"]),
                             ("powershell.exe", ["x", "-EncodedCommand", encoded]),
                             ("powershell.exe", ["-EncodedCommand", "not base64!"]),
                             ("powershell.exe", [encoded])):
        assert decode_powershell(executable, args) is None


@example("literal _x000D_ and a <tag> & more\r\n")
@given(st.text(max_size=200))
def test_clixml_round_trip(text: str) -> None:
    text = text.replace("\x00", "")
    assert clixml_text(clixml(text.encode())).decode() == text


@given(st.binary(max_size=300))
def test_clixml_text_of_any_bytes_is_bytes(data: bytes) -> None:
    assert isinstance(clixml_text(b"#< CLIXML\r\n" + data), bytes)
    assert clixml_text(data) == data or data.lstrip().startswith(b"#< CLIXML")


@settings(max_examples=300)
@given(st.one_of(st.binary(max_size=400),
                 st.text(max_size=300).map(lambda t: (
                     f'<s:Envelope xmlns:s="{soap.S}"><s:Header>{t}</s:Header>'
                     "<s:Body/></s:Envelope>").encode())))
def test_the_soap_reader_takes_any_bytes(data: bytes) -> None:
    try:
        request = soap.parse_request(data)
    except soap.SoapError:
        return
    assert request.action and request.message_id


def _imports(folder: Path) -> set[str]:
    names: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
    return names


def test_probe_and_simulator_never_import_each_other() -> None:
    assert not [m for m in _imports(ROOT / "simulators" / "winrm")
                if m.startswith("otaudit.probes")]
    assert not [m for m in _imports(ROOT / "probes" / "winrm")
                if m.startswith(("otaudit.simulators", "otaudit.server", "otaudit.collector"))]
