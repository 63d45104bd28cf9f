"""Summaries of raw SNMP datagrams for the request log (before pysnmp decides on them).

Requests with a wrong community never reach pysnmp's observers, so every datagram
is summarised here first: version, community or v3 user, PDU type, request id and
the first OIDs. SNMPv3 PDUs with privacy are encrypted; their type is filled in later
from pysnmp's observer, once the agent has decrypted them.
"""

from __future__ import annotations

from typing import Any

from pyasn1.codec.ber import decoder
from pysnmp.proto import api
from pysnmp.proto.api import verdec
from pysnmp.proto.mpmod.rfc3412 import SNMPv3Message
from pysnmp.proto.secmod.rfc3414.service import UsmSecurityParameters

# context-specific tag number of each PDU -> log kind
PDU_KINDS = {0: "GET", 1: "GETNEXT", 2: "RESPONSE", 3: "SET", 4: "TRAP", 5: "GETBULK",
             6: "INFORM", 7: "TRAP", 8: "REPORT"}
VERSIONS = {0: "v1", 1: "v2c", 3: "v3"}
SECURITY_LEVELS = {0: "noAuthNoPriv", 1: "authNoPriv", 3: "authPriv"}
MAX_LOGGED_OIDS = 8


def pdu_kind(pdu: Any) -> str:
    return PDU_KINDS.get(pdu.tagSet.superTags[-1].tagId, "UNKNOWN")


def summarize(datagram: bytes) -> dict[str, Any]:
    """Describe one incoming datagram; never raises (junk becomes ``MALFORMED``)."""
    try:
        version = int(verdec.decode_message_version(datagram))
        if version in (0, 1):
            return _community_message(datagram, version)
        if version == 3:
            return _v3_message(datagram)
        return {"kind": "MALFORMED", "reason": f"SNMP version field {version}",
                "size": len(datagram)}
    except Exception as exc:  # pyasn1 raises many error types on junk
        return {"kind": "MALFORMED", "reason": type(exc).__name__, "size": len(datagram)}


def _community_message(datagram: bytes, version: int) -> dict[str, Any]:
    module = api.PROTOCOL_MODULES[version]
    message, _ = decoder.decode(datagram, asn1Spec=module.Message())
    community = bytes(module.apiMessage.get_community(message))
    pdu = module.apiMessage.get_pdu(message)
    return {"kind": pdu_kind(pdu), "version": VERSIONS[version],
            "community": community.decode("utf-8", errors="backslashreplace"),
            **pdu_details(pdu)}


def _v3_message(datagram: bytes) -> dict[str, Any]:
    message, _ = decoder.decode(datagram, asn1Spec=SNMPv3Message())
    flags = bytes(message["msgGlobalData"]["msgFlags"])[0]
    usm, _ = decoder.decode(bytes(message["msgSecurityParameters"]),
                            asn1Spec=UsmSecurityParameters())
    summary: dict[str, Any] = {
        "version": "v3",
        "user": bytes(usm["msgUserName"]).decode("utf-8", errors="backslashreplace"),
        "security_level": SECURITY_LEVELS.get(flags & 0x03, f"flags 0x{flags:02x}"),
    }
    data = message["msgData"]
    if data.getName() == "plaintext":
        pdu = data["plaintext"]["data"].getComponent()
        summary.update(kind=pdu_kind(pdu), **pdu_details(pdu))
    else:
        summary["kind"] = "ENCRYPTED"  # replaced by the decrypted PDU type when accepted
    return summary


def pdu_details(pdu: Any) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if "request-id" in pdu:
        details["request_id"] = int(pdu["request-id"])
    if "non-repeaters" in pdu:
        details["non_repeaters"] = int(pdu["non-repeaters"])
        details["max_repetitions"] = int(pdu["max-repetitions"])
    if "variable-bindings" in pdu:
        bindings = pdu["variable-bindings"]
        details["oids"] = [str(vb[0]) for vb in list(bindings)[:MAX_LOGGED_OIDS]]
        details["varbinds"] = len(bindings)
    return details
