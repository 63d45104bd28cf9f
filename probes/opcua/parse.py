"""Pure interpretation of OPC UA discovery data (GetEndpoints, BuildInfo).

Binary decoding is asyncua's (``decode_get_endpoints``/``decode_read`` take the raw
response body); everything else turns decoded structures into plain values. Security
policy names: OPC 10000-7 (profiles); Basic128Rsa15 and Basic256 are deprecated there
(SHA-1), None offers no security at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from asyncua import ua
from asyncua.common.utils import Buffer
from asyncua.ua.ua_binary import nodeid_from_binary, struct_from_binary

from otaudit.probes.base import ParseError

POLICY_PREFIX = "http://opcfoundation.org/UA/SecurityPolicy#"
DEPRECATED_POLICIES = ("Basic128Rsa15", "Basic256")
MODE_NAMES = {ua.MessageSecurityMode.Invalid: "Invalid", ua.MessageSecurityMode.None_: "None",
              ua.MessageSecurityMode.Sign: "Sign",
              ua.MessageSecurityMode.SignAndEncrypt: "SignAndEncrypt"}
TOKEN_NAMES = {ua.UserTokenType.Anonymous: "Anonymous", ua.UserTokenType.UserName: "UserName",
               ua.UserTokenType.Certificate: "Certificate",
               ua.UserTokenType.IssuedToken: "IssuedToken"}
BUILD_INFO = {  # node (namespace 0) → field
    ua.ObjectIds.Server_ServerStatus_BuildInfo_ProductUri: "product_uri",
    ua.ObjectIds.Server_ServerStatus_BuildInfo_ManufacturerName: "manufacturer",
    ua.ObjectIds.Server_ServerStatus_BuildInfo_ProductName: "product_name",
    ua.ObjectIds.Server_ServerStatus_BuildInfo_SoftwareVersion: "software_version",
    ua.ObjectIds.Server_ServerStatus_BuildInfo_BuildNumber: "build_number",
    ua.ObjectIds.Server_ServerStatus_BuildInfo_BuildDate: "build_date",
}


def policy_name(uri: str | None) -> str:
    """``http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256`` → ``Basic256Sha256``."""
    if not uri:
        return "None"
    return uri[len(POLICY_PREFIX):] if uri.startswith(POLICY_PREFIX) else uri


@dataclass(frozen=True)
class Token:
    type: str  # Anonymous, UserName, Certificate, IssuedToken
    policy_id: str
    security_policy: str | None  # the token's own policy (None: the endpoint's)


@dataclass(frozen=True)
class Endpoint:
    url: str
    security_policy: str
    security_mode: str
    security_level: int
    tokens: tuple[Token, ...]
    certificate: bytes
    application_uri: str
    product_uri: str
    application_name: str

    def to_fact(self) -> dict[str, Any]:
        return {"url": self.url, "security_policy": self.security_policy,
                "security_mode": self.security_mode, "security_level": self.security_level,
                "user_tokens": sorted({t.type for t in self.tokens})}

    @property
    def insecure(self) -> bool:
        return self.security_mode == "None" or self.security_policy == "None"

    @property
    def cleartext_password(self) -> bool:
        """A UserName token whose password crosses this endpoint unencrypted."""
        return self.insecure and any(
            t.type == "UserName" and policy_name(t.security_policy or self.security_policy)
            == "None" for t in self.tokens)


def endpoints(descriptions: Iterable[ua.EndpointDescription]) -> list[Endpoint]:
    found = []
    for d in descriptions:
        if not isinstance(d, ua.EndpointDescription):
            raise ParseError(f"not an endpoint description: {type(d).__name__}")
        server = d.Server
        tokens = tuple(Token(TOKEN_NAMES.get(t.TokenType, f"unknown({int(t.TokenType)})"),
                             t.PolicyId or "", t.SecurityPolicyUri or None)
                       for t in d.UserIdentityTokens or [])
        found.append(Endpoint(
            url=d.EndpointUrl or "", security_policy=policy_name(d.SecurityPolicyUri),
            security_mode=MODE_NAMES.get(d.SecurityMode, f"unknown({int(d.SecurityMode)})"),
            security_level=int(d.SecurityLevel or 0), tokens=tokens,
            certificate=bytes(d.ServerCertificate or b""),
            application_uri=server.ApplicationUri or "", product_uri=server.ProductUri or "",
            application_name=(server.ApplicationName.Text or "") if server.ApplicationName
            else ""))
    return found


@dataclass(frozen=True)
class Posture:
    """What the endpoint list says about the server, as plain values."""

    policies: list[str]
    modes: list[str]
    token_types: list[str]
    security_none: bool
    deprecated: list[str]
    anonymous: bool
    cleartext_password: bool


def posture(eps: list[Endpoint]) -> Posture:
    policies = sorted({e.security_policy for e in eps})
    tokens = sorted({t.type for e in eps for t in e.tokens})
    return Posture(
        policies=policies, modes=sorted({e.security_mode for e in eps}), token_types=tokens,
        security_none=any(e.insecure for e in eps),
        deprecated=[p for p in policies if p in DEPRECATED_POLICIES],
        anonymous="Anonymous" in tokens,
        cleartext_password=any(e.cleartext_password for e in eps))


def anonymous_insecure_endpoint(eps: list[Endpoint]) -> tuple[Endpoint, Token] | None:
    """The first endpoint without security that takes anonymous users (the only kind of
    session the probe may open: no client certificate, no credentials)."""
    for e in eps:
        if e.security_policy == "None" and e.security_mode == "None":
            for t in e.tokens:
                if t.type == "Anonymous":
                    return e, t
    return None


def _body(raw: bytes, expected: int, what: str) -> Buffer:
    buf = Buffer(raw)
    try:
        typeid = nodeid_from_binary(buf.copy())  # the response's TypeId field, peeked
    except Exception as exc:  # asyncua raises NotEnoughData, struct.error, ValueError, ...
        raise ParseError(f"{what}: no type id ({exc!r})") from None
    if typeid != ua.FourByteNodeId(expected):
        if typeid == ua.FourByteNodeId(ua.ObjectIds.ServiceFault_Encoding_DefaultBinary):
            try:
                nodeid_from_binary(buf)
                header = struct_from_binary(ua.ResponseHeader, buf)
            except Exception as exc:  # asyncua raises several kinds on bad bytes
                raise ParseError(f"{what}: malformed service fault ({exc})") from None
            raise ParseError(f"{what}: service fault {header.ServiceResult.name}")
        raise ParseError(f"{what}: response type {typeid.to_string()}")
    return buf


def decode_get_endpoints(raw: bytes) -> list[ua.EndpointDescription]:
    """Decode a GetEndpoints response body (type id first, as after the sequence header)."""
    buf = _body(raw, ua.ObjectIds.GetEndpointsResponse_Encoding_DefaultBinary,
                "GetEndpoints response")
    try:
        response = struct_from_binary(ua.GetEndpointsResponse, buf)
    except Exception as exc:  # asyncua raises NotEnoughData, UaError, ValueError, ...
        raise ParseError(f"GetEndpoints response cannot be decoded: {exc}") from None
    if not response.ResponseHeader.ServiceResult.is_good():
        raise ParseError(f"GetEndpoints answered {response.ResponseHeader.ServiceResult.name}")
    return list(response.Endpoints or [])


@dataclass(frozen=True)
class BuildInfo:
    product_uri: str | None = None
    manufacturer: str | None = None
    product_name: str | None = None
    software_version: str | None = None
    build_number: str | None = None
    build_date: str | None = None  # ISO 8601


def build_info(values: dict[int, ua.DataValue]) -> BuildInfo:
    """BuildInfo fields from the values read for ``BUILD_INFO`` nodes (bad ones skipped)."""
    fields: dict[str, str] = {}
    for node, field in BUILD_INFO.items():
        dv = values.get(node)
        if dv is None or (dv.StatusCode is not None and not dv.StatusCode.is_good()):
            continue
        value = dv.Value.Value if dv.Value is not None else None
        if isinstance(value, datetime):
            value = (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
        if value not in (None, ""):
            fields[field] = str(value)
    return BuildInfo(**fields)
