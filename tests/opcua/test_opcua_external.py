"""A second OPC UA client agrees with the probe: asyncua's own ``uadiscover`` command.

It runs in its own process (FindServers, then GetEndpoints on each discovery URL) and
prints every endpoint; the probe's endpoint list, token types, application URI and
certificate validity must be what it printed.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from opcua_helpers import PROFILES, opcua_server, opcua_servers, probe_device

pytestmark = pytest.mark.external_tool
FIXTURES = (opcua_server, opcua_servers)  # pytest finds fixtures by name in this module
MODES = {"1": "None", "2": "Sign", "3": "SignAndEncrypt"}
TOKENS = {"0": "Anonymous", "1": "UserName", "2": "Certificate", "3": "IssuedToken"}


def uadiscover() -> str:
    found = Path(sys.executable).with_name("uadiscover")
    tool = str(found) if found.exists() else shutil.which("uadiscover")
    if tool is None:
        pytest.skip("asyncua's uadiscover command is not installed")
    return tool


def parse(output: str) -> dict[str, object]:
    blocks = re.split(r"^Endpoint \d+:$", output, flags=re.MULTILINE)[1:]
    endpoints = []
    for block in blocks:
        policy = re.search(r"^  Security Policy URI: \S+#(\S+)$", block, re.MULTILINE)
        mode = re.search(r"^  Security Mode: (\d)$", block, re.MULTILINE)
        tokens = re.findall(r"^    Token type: (\d)$", block, re.MULTILINE)
        assert policy and mode, block
        endpoints.append((policy.group(1), MODES[mode.group(1)],
                          tuple(sorted(TOKENS[t] for t in tokens))))
    cert = re.search(r"^  Server Certificate: (.*?)( \(self-signed\))?, (\S+ \S+) - (\S+ \S+)$",
                     output, re.MULTILINE)
    uri = re.search(r"^  Application URI: (\S+)$", output, re.MULTILINE)
    return {"endpoints": sorted(endpoints), "self_signed": bool(cert and cert.group(2)),
            "not_after": datetime.fromisoformat(cert.group(4)) if cert else None,
            "application_uri": uri.group(1) if uri else None}


@pytest.mark.parametrize("opcua_server", PROFILES, indirect=True)
async def test_uadiscover_agrees_with_the_probe(opcua_server):
    done = await asyncio.to_thread(subprocess.run, [uadiscover(), "-u", opcua_server.url],
                                   capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    seen = parse(done.stdout)
    obs = await probe_device(opcua_server)
    ours = sorted((e["security_policy"], e["security_mode"], tuple(e["user_tokens"]))
                  for e in obs.fact("opcua.endpoints"))
    assert seen["endpoints"] == ours and ours
    assert seen["application_uri"] == obs.fact("opcua.application_uri")
    assert seen["self_signed"] is obs.fact("opcua.cert_self_signed")
    assert seen["not_after"] == datetime.fromisoformat(obs.fact("opcua.cert_not_after"))
    kinds = opcua_server.log.kinds()
    assert "write" not in kinds and "call" not in kinds
