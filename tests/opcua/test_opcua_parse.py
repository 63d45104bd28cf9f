"""Interpretation of GetEndpoints and BuildInfo: every policy, mode and token rule."""

from __future__ import annotations

import contextlib
from datetime import datetime
from pathlib import Path

import pytest
from asyncua import ua
from asyncua.ua.ua_binary import struct_to_binary
from hypothesis import given
from hypothesis import strategies as st

from otaudit.probes.base import ParseError
from otaudit.probes.certificates import summarise
from otaudit.probes.opcua.parse import (
    anonymous_insecure_endpoint,
    build_info,
    decode_get_endpoints,
    endpoints,
    policy_name,
    posture,
)

P = "http://opcfoundation.org/UA/SecurityPolicy#"
MODE = ua.MessageSecurityMode


def token(kind: ua.UserTokenType, policy: str | None = None, pid: str = "p") -> ua.UserTokenPolicy:
    return ua.UserTokenPolicy(PolicyId=pid, TokenType=kind,
                              SecurityPolicyUri=P + policy if policy else None)


def endpoint(policy: str, mode: ua.MessageSecurityMode, *tokens: ua.UserTokenPolicy,
             cert: bytes = b"") -> ua.EndpointDescription:
    server = ua.ApplicationDescription(ApplicationUri="urn:s", ProductUri="urn:p",
                                       ApplicationName=ua.LocalizedText("S"))
    return ua.EndpointDescription(EndpointUrl="opc.tcp://h:4840", Server=server,
                                  ServerCertificate=cert, SecurityMode=mode,
                                  SecurityPolicyUri=P + policy, UserIdentityTokens=list(tokens),
                                  SecurityLevel=3)


@pytest.mark.parametrize(("uri", "name"), [
    (P + "None", "None"), (P + "Basic256Sha256", "Basic256Sha256"),
    (P + "Aes256_Sha256_RsaPss", "Aes256_Sha256_RsaPss"), ("", "None"), (None, "None"),
    ("urn:vendor:policy", "urn:vendor:policy")])
def test_policy_names(uri, name):
    assert policy_name(uri) == name


ANON, USER, CERT = ua.UserTokenType.Anonymous, ua.UserTokenType.UserName, \
    ua.UserTokenType.Certificate


@pytest.mark.parametrize(("eps", "cleartext"), [
    ([endpoint("None", MODE.None_, token(USER))], True),  # token policy: the endpoint's
    ([endpoint("None", MODE.None_, token(USER, "None"))], True),
    ([endpoint("None", MODE.None_, token(USER, "Basic256Sha256"))], False),
    ([endpoint("Basic256Sha256", MODE.SignAndEncrypt, token(USER, "None"))], False),
    ([endpoint("Basic256Sha256", MODE.Sign, token(USER))], False),
    ([endpoint("None", MODE.None_, token(ANON), token(CERT, "Basic256Sha256"))], False),
])
def test_cleartext_password(eps, cleartext):
    assert posture(endpoints(eps)).cleartext_password is cleartext


def test_posture_lists_and_flags():
    eps = endpoints([endpoint("None", MODE.None_, token(ANON)),
                     endpoint("Basic128Rsa15", MODE.SignAndEncrypt, token(USER)),
                     endpoint("Basic256", MODE.Sign, token(USER)),
                     endpoint("Basic256Sha256", MODE.SignAndEncrypt, token(CERT))])
    p = posture(eps)
    assert p.policies == ["Basic128Rsa15", "Basic256", "Basic256Sha256", "None"]
    assert p.modes == ["None", "Sign", "SignAndEncrypt"]
    assert p.deprecated == ["Basic128Rsa15", "Basic256"]
    assert p.token_types == ["Anonymous", "Certificate", "UserName"]
    assert p.security_none and p.anonymous
    assert eps[0].to_fact() == {"url": "opc.tcp://h:4840", "security_policy": "None",
                                "security_mode": "None", "security_level": 3,
                                "user_tokens": ["Anonymous"]}


def test_hardened_posture():
    p = posture(endpoints([endpoint("Basic256Sha256", MODE.SignAndEncrypt, token(USER),
                                    token(CERT))]))
    assert not p.security_none and not p.anonymous and p.deprecated == []


@pytest.mark.parametrize(("eps", "found"), [
    ([endpoint("None", MODE.None_, token(ANON, pid="anon"))], "anon"),
    ([endpoint("Basic256Sha256", MODE.SignAndEncrypt, token(ANON))], None),
    ([endpoint("None", MODE.None_, token(USER))], None),
    ([endpoint("None", MODE.Sign, token(ANON))], None),
    ([endpoint("Basic256Sha256", MODE.Sign, token(ANON)),
      endpoint("None", MODE.None_, token(USER), token(ANON, pid="a2"))], "a2"),
])
def test_only_an_insecure_anonymous_endpoint_allows_the_probe_a_session(eps, found):
    result = anonymous_insecure_endpoint(endpoints(eps))
    assert (result[1].policy_id if result else None) == found


def response(eps: list[ua.EndpointDescription],
             status: int = ua.StatusCodes.Good) -> bytes:
    r = ua.GetEndpointsResponse()
    r.Endpoints = eps
    r.ResponseHeader.ServiceResult = ua.StatusCode(status)
    return struct_to_binary(r)


def test_decode_get_endpoints_and_every_truncation():
    raw = response([endpoint("None", MODE.None_, token(ANON), cert=b"\x30\x03abc")])
    [decoded] = decode_get_endpoints(raw)
    assert decoded.SecurityPolicyUri == P + "None"
    for cut in range(len(raw)):
        with pytest.raises(ParseError):
            decode_get_endpoints(raw[:cut])


def test_bad_service_results_are_parse_errors():
    with pytest.raises(ParseError, match="BadTooManySessions"):
        decode_get_endpoints(response([], ua.StatusCodes.BadTooManySessions))
    fault = ua.ServiceFault()
    fault.ResponseHeader.ServiceResult = ua.StatusCode(ua.StatusCodes.BadServiceUnsupported)
    with pytest.raises(ParseError, match="service fault BadServiceUnsupported"):
        decode_get_endpoints(struct_to_binary(fault))
    with pytest.raises(ParseError, match="response type"):
        decode_get_endpoints(struct_to_binary(ua.ReadResponse()))


@given(st.binary(max_size=200))
def test_decoding_raises_only_parse_errors(data):
    with contextlib.suppress(ParseError):
        decode_get_endpoints(data)


def dv(value: object, status: int = ua.StatusCodes.Good) -> ua.DataValue:
    return ua.DataValue(ua.Variant(value), StatusCode=ua.StatusCode(status))


def test_build_info_values():
    values = {2262: dv("urn:p"), 2263: dv("Acme"), 2261: dv("Box"), 2264: dv("1.2.3"),
              2265: dv("42"), 2266: dv(datetime(2024, 5, 1))}
    info = build_info(values)
    assert (info.manufacturer, info.product_name, info.software_version) == ("Acme", "Box",
                                                                             "1.2.3")
    assert info.build_number == "42" and info.product_uri == "urn:p"
    assert info.build_date == "2024-05-01T00:00:00+00:00"


def test_bad_or_empty_build_info_values_are_left_out():
    values = {2263: dv("Acme", ua.StatusCodes.BadUserAccessDenied), 2261: dv(""),
              2264: dv(None)}
    assert build_info(values) == build_info({})


def test_non_endpoints_are_refused():
    with pytest.raises(ParseError):
        endpoints([ua.ApplicationDescription()])


def recording(name: str) -> bytes:
    path = Path(__file__).parents[1] / "fixtures" / "opcua" / name
    return bytes.fromhex("".join(line for line in path.read_text().splitlines()
                                 if not line.startswith("#")))


def test_a_node_opcua_server_reply():
    """node-opcua (another implementation than the simulator's asyncua) with its defaults."""
    eps = endpoints(decode_get_endpoints(recording("node-opcua-2.186.4_getendpoints.hex")))
    assert len(eps) == 7
    p = posture(eps)
    assert p.policies == ["Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss", "Basic256Sha256",
                          "None"]
    assert p.modes == ["None", "Sign", "SignAndEncrypt"] and p.deprecated == []
    assert p.token_types == ["Anonymous", "Certificate", "UserName"]
    assert p.security_none and p.anonymous
    # its user names on the None endpoint are encrypted with Basic256Sha256/Aes128 policies
    assert not p.cleartext_password
    insecure = eps[0]
    assert (insecure.security_policy, insecure.security_mode) == ("None", "None")
    assert {t.security_policy for t in insecure.tokens if t.type == "UserName"} == {
        P + "Basic256Sha256", P + "Aes128_Sha256_RsaOaep"}
    assert anonymous_insecure_endpoint(eps)[1].type == "Anonymous"
    assert {e.security_level for e in eps} == {1, 105, 106, 107, 205, 206, 207}
    assert insecure.application_uri == "urn:vm:NodeOPCUA-Server"
    cert = summarise(insecure.certificate)
    assert (cert.key_type, cert.key_bits, cert.signature_hash) == ("RSA", 2048, "sha256")
    assert cert.self_signed and cert.application_uri == insecure.application_uri
    assert cert.subject == "CN=NodeOPCUA@vm,O=Sterfive,L=Orleans,C=FR"
    assert len({e.certificate for e in eps}) == 1


def test_a_token_of_an_unlisted_type_is_no_password() -> None:
    """An unknown token type (named "unknown(7)") on an insecure endpoint carries no user
    name: no cleartext password (issue 23: the comparison is equality, not order)."""
    odd = ua.UserTokenPolicy(PolicyId="x", TokenType=7, SecurityPolicyUri=None)
    eps = endpoints([endpoint("None", MODE.None_, odd)])
    assert eps[0].tokens[0].type == "unknown(7)"
    assert posture(eps).cleartext_password is False
    assert posture(eps).token_types == ["unknown(7)"] and not posture(eps).anonymous


def test_a_posture_cannot_be_changed() -> None:
    import dataclasses

    p = posture(endpoints([endpoint("None", MODE.None_, token(ANON))]))
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.anonymous = False  # type: ignore[misc]


def test_either_none_mode_or_none_policy_is_insecure() -> None:
    for policy, mode in (("None", MODE.Sign), ("Basic256Sha256", MODE.None_)):
        [ep] = endpoints([endpoint(policy, mode, token(USER))])
        assert ep.insecure and posture([ep]).security_none, (policy, mode)
    for mode in (MODE.Sign, MODE.SignAndEncrypt, MODE.Invalid):
        [ep] = endpoints([endpoint("Basic256Sha256", mode, token(USER))])
        assert not ep.insecure, mode


def test_an_invalid_mode_opens_no_session() -> None:
    eps = endpoints([endpoint("None", MODE.Invalid, token(ANON))])
    assert eps[0].security_mode == "Invalid"
    assert anonymous_insecure_endpoint(eps) is None


def test_application_name_text() -> None:
    [ep] = endpoints([endpoint("None", MODE.None_, token(ANON))])
    assert (ep.application_name, ep.application_uri, ep.product_uri) == ("S", "urn:s", "urn:p")
    bare = endpoint("None", MODE.None_, token(ANON))
    bare.Server.ApplicationName = ua.LocalizedText(None)
    assert endpoints([bare])[0].application_name == ""


def test_a_vendor_policy_with_signing_is_not_insecure() -> None:
    ep = endpoint("None", MODE.Sign, token(USER))
    ep.SecurityPolicyUri = "http://vendor.example/UA/SecurityPolicy#Custom"
    [found] = endpoints([ep])
    assert found.security_policy == "http://vendor.example/UA/SecurityPolicy#Custom"
    assert not found.insecure and not posture([found]).security_none
