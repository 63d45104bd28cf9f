"""``otaudit probe snmp`` from the command line: flags, literal secrets, JSON output."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest
from pydantic import ValidationError
from snmp_testkit import assert_read_only

from otaudit.probes.snmp.options import SnmpOptions
from otaudit.simulators.snmp.device import SnmpSimulator
from otaudit.simulators.snmp.profile import SnmpProfile

SECRET = "Zq9-cli-community"


async def otaudit(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "otaudit.cli.main", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


async def test_probe_cli_with_literal_community_keeps_it_out_of_the_output():
    profile = SnmpProfile.model_validate({
        "name": "echo", "agent": {"versions": ["v2c"], "communities": [{"community": SECRET}]},
        # a device that echoes its community in sysContact: facts and evidence must mask it
        "system": {"descr": "Echo switch", "contact": f"ops (community {SECRET})"}})
    async with SnmpSimulator(profile) as sim:
        code, out, err = await otaudit("probe", "snmp", "127.0.0.1", "--port", str(sim.port),
                                       "--json", "--community", SECRET,
                                       "--request-timeout", "0.3", "--retries", "0")
    assert code == 0, err
    assert SECRET not in out and SECRET not in err
    obs = json.loads(out)
    assert obs["status"] == "ok"
    assert obs["facts"]["snmp.sys_contact"]["value"] == "ops (community [REDACTED])"
    assert obs["facts"]["snmp.versions_answering"]["value"] == ["v2c"]
    assert_read_only(sim)


async def test_probe_cli_refuses_literal_v3_keys():
    code, _, err = await otaudit("probe", "snmp", "127.0.0.1", "--v3-user", "u",
                                 "--v3-auth-key", "topsecret-1")
    assert code == 2
    assert "--v3-auth-key-env VAR" in err and "topsecret-1" not in err


def test_options_from_cli_flags():
    options = SnmpOptions.from_cli({"v3-user": "mon", "v3-auth-key-env": "A",
                                    "v3-priv-key-file": "/run/secrets/p",
                                    "v3-priv-protocol": "aes256", "v3-auth-protocol": "sha256",
                                    "max-oids": "100"})
    assert options.version == "v3"
    assert options.v3_auth_key.env == "A" and str(options.v3_priv_key.file) == "/run/secrets/p"
    assert (options.v3_auth_protocol, options.v3_priv_protocol) == ("SHA-256", "AES-256")
    assert options.max_oids == 100
    options = SnmpOptions.from_cli({"community-env": "C", "version": "v1"})
    assert options.version == "v1" and options.community.env == "C"


@pytest.mark.parametrize(("flags", "message"), [
    ({}, "version v2c needs a community"),
    ({"version": "v3"}, "version v3 needs v3_user"),
    ({"v3-user": "u", "v3-priv-key-env": "P"}, "v3_priv_key needs v3_auth_key"),
    ({"community-env": "C", "colour": "red"}, "Extra inputs are not permitted"),
])
def test_options_reject_incomplete_credentials(flags, message):
    with pytest.raises(ValidationError, match=message):
        SnmpOptions.from_cli(flags)


def test_credential_repr_hides_secrets():
    from otaudit.probes.snmp.client import Credential

    text = repr(Credential("v3", user="mon", auth_key="auth-secret-1", priv_key="priv-secret-2"))
    assert "auth-secret-1" not in text and "priv-secret-2" not in text
    assert "mon" in text and "authPriv" in text
    assert "c0mmunity" not in repr(Credential("v2c", community="c0mmunity"))
