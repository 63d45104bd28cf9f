"""SSH identification line and the unencrypted SSH_MSG_KEXINIT packet (RFC 4253 §4.2, §7.1)."""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from otaudit.probes.base import ParseError
from otaudit.probes.ssh.parse.common import parser

MSG_KEXINIT = 20
MAX_PACKET = 35000  # RFC 4253 §6.1: implementations must handle 35000-byte packets
_NAME = re.compile(r"^[\x21-\x2b\x2d-\x7e]{1,64}$")  # printable US-ASCII without ',' or space


@dataclass(frozen=True)
class Identification:
    line: str
    proto_version: str
    software: str
    comments: str | None


@dataclass(frozen=True)
class KexInit:
    kex: list[str]
    host_key: list[str]
    ciphers_c2s: list[str]
    ciphers_s2c: list[str]
    macs_c2s: list[str]
    macs_s2c: list[str]
    compression_c2s: list[str]
    compression_s2c: list[str]
    first_kex_follows: bool

    def render(self) -> str:
        """Readable text of the name-lists, for evidence."""
        rows = [("kex_algorithms", self.kex), ("server_host_key_algorithms", self.host_key),
                ("encryption_algorithms_c2s", self.ciphers_c2s),
                ("encryption_algorithms_s2c", self.ciphers_s2c),
                ("mac_algorithms_c2s", self.macs_c2s), ("mac_algorithms_s2c", self.macs_s2c),
                ("compression_algorithms_c2s", self.compression_c2s),
                ("compression_algorithms_s2c", self.compression_s2c)]
        return "\n".join(f"{name}: {','.join(values)}" for name, values in rows)


@parser
def parse_identification(line: bytes) -> Identification:
    """``SSH-protoversion-softwareversion SP comments`` without the CR LF."""
    try:
        text = line.rstrip(b"\r\n").decode("ascii")
    except UnicodeDecodeError:
        raise ParseError("identification string is not ASCII") from None
    match = re.fullmatch(r"SSH-([0-9.]+)-([\x21-\x7e]+)(?: (.*))?", text)
    if not match or len(text) > 253:
        raise ParseError(f"not an SSH identification string: {text[:60]!r}")
    return Identification(line=text, proto_version=match[1], software=match[2],
                          comments=match[3])


@parser
def parse_packet_header(header: bytes) -> tuple[int, int]:
    """(packet_length, padding_length) of an unencrypted binary packet, bounds-checked."""
    if len(header) != 5:
        raise ParseError("short binary packet header")
    length, padding = struct.unpack(">IB", header)
    if not 12 <= length <= MAX_PACKET:
        raise ParseError(f"implausible packet length {length}")
    if padding < 4 or padding >= length:
        raise ParseError(f"implausible padding length {padding}")
    return length, padding


def _name_list(payload: bytes, offset: int) -> tuple[list[str], int]:
    if offset + 4 > len(payload):
        raise ParseError("KEXINIT truncated in a name-list length")
    (size,) = struct.unpack_from(">I", payload, offset)
    offset += 4
    if offset + size > len(payload):
        raise ParseError("KEXINIT name-list runs past the packet")
    raw = payload[offset:offset + size]
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise ParseError("KEXINIT name-list is not ASCII") from None
    names = text.split(",") if text else []
    for name in names:
        if not _NAME.match(name):
            raise ParseError(f"invalid algorithm name {name[:40]!r} in KEXINIT")
    return names, offset + size


@parser
def parse_kexinit(payload: bytes) -> KexInit:
    """The ten name-lists of an SSH_MSG_KEXINIT payload (message id byte included)."""
    if not payload or payload[0] != MSG_KEXINIT:
        kind = payload[0] if payload else None
        raise ParseError(f"expected SSH_MSG_KEXINIT (20), got message {kind}")
    offset = 1 + 16  # message id, cookie
    lists = []
    for _ in range(10):
        names, offset = _name_list(payload, offset)
        lists.append(names)
    if offset + 5 > len(payload):
        raise ParseError("KEXINIT truncated after the name-lists")
    return KexInit(kex=lists[0], host_key=lists[1], ciphers_c2s=lists[2], ciphers_s2c=lists[3],
                   macs_c2s=lists[4], macs_s2c=lists[5], compression_c2s=lists[6],
                   compression_s2c=lists[7], first_kex_follows=payload[offset] != 0)
