"""Siemens S7 probe: identity, firmware, protection level and CPU mode from the SZL.

One connection (rack/slot from the options; without slot or family it tries slot 1,
then slot 2 once if the CPU refuses the COTP connection), then four paced SZL reads:
0x0011 module identification, 0x001C component identification, 0x0232 index 4
protection, 0x0424 CPU mode. Our own parsers (``parse.py``) read every record;
python-snap7's ``get_cpu_state``/``get_protection`` are not used (a stub and a misparse).
Only Setup Communication and Read SZL can leave this probe (``guard.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import Field

from otaudit.observation import AssetKind
from otaudit.probes.base import (
    ParseError,
    Probe,
    ProbeContext,
    ProbeError,
    ProbeOptions,
    ProbeRefused,
    ProbeTarget,
    ProbeTimeout,
    Recorder,
)
from otaudit.probes.s7.client import (
    CotpRefused,
    ReadOnlyS7Client,
    S7Broken,
    S7Timeout,
    SetupRefused,
    SzlRefused,
    TcpFailed,
)
from otaudit.probes.s7.facts import FACTS
from otaudit.probes.s7.parse import (
    parse_component_identification,
    parse_cpu_mode,
    parse_module_identification,
    parse_protection,
)
from otaudit.probes.s7.products import product_of, vendor_of

Family = Literal["s7-300", "s7-400", "s7-1200", "s7-1500"]
FAMILY_SLOT: dict[str, int] = {"s7-300": 2, "s7-400": 2, "s7-1200": 1, "s7-1500": 1}
# COTP disconnect reasons that say "no" to the connection itself (classic access refused);
# 0x02/0x03 name the rack/slot TSAP, congestion and protocol errors say nothing about access
POLICY_REFUSALS = frozenset({0x00, 0x80, 0x88})
ADDRESS_REFUSALS = frozenset({0x02, 0x03})
# SZL 0x001C record index → fact path(s)
COMPONENT_FACTS: dict[int, tuple[str, ...]] = {
    0x0001: ("identity.name",), 0x0002: ("s7.module_name",), 0x0003: ("s7.plant_id",),
    0x0004: ("s7.copyright",), 0x0005: ("identity.serial",),
    0x0007: ("s7.module_type", "identity.model"), 0x000B: ("s7.location",),
}
SZL_FACTS: dict[int, tuple[str, ...]] = {
    0x0011: ("identity.order_code", "identity.firmware_version", "identity.hardware_version",
             "identity.vendor", "identity.product"),
    0x001C: tuple(path for paths in COMPONENT_FACTS.values() for path in paths),
    0x0232: ("s7.protection_level", "s7.protection_meaning", "s7.protection_parametrised",
             "s7.protection_key_switch", "s7.password_set", "s7.mode_selector"),
    0x0424: ("s7.cpu_mode",),
}
SZL_READS = ((0x0011, 0x0000), (0x001C, 0x0000), (0x0232, 0x0004), (0x0424, 0x0000))
SZL_UNAVAILABLE = "0xd402"  # S7comm USERDATA error: information function (SZL) unavailable


class S7Options(ProbeOptions):
    rack: int | None = Field(None, ge=0, le=7, description="rack of the CPU (default 0)")
    slot: int | None = Field(None, ge=0, le=31, description="slot of the CPU (default: from "
                             "--family; otherwise 1, then 2 if the CPU refuses slot 1)")
    family: Family | None = Field(None, description="s7-300, s7-400 (slot 2), s7-1200, "
                                  "s7-1500 (slot 1)")

    def candidates(self) -> list[tuple[int, int]]:
        """(rack, slot) pairs to try, in order."""
        rack = self.rack if self.rack is not None else 0
        if self.slot is not None:
            return [(rack, self.slot)]
        if self.family is not None:
            return [(rack, FAMILY_SLOT[self.family])]
        return [(rack, 1), (rack, 2)]


class S7Probe(Probe):
    name = "s7"
    version = "1.0"
    typical_seconds = 0.4  # COTP, setup and a few SZL reads (bench/RESULTS.md medians)
    default_port = 102
    default_kind = AssetKind.PLC
    Options = S7Options
    facts = FACTS
    # SZL lists read in order: identity, component identification, protection, CPU state
    szls: tuple[tuple[int, int], ...] = SZL_READS

    async def identify(self, target: ProbeTarget, ctx: ProbeContext) -> None:
        """Connect and read the module identification (SZL 0x0011) only."""
        await _IdentityRead().collect(target, ctx)

    async def collect(self, target: ProbeTarget, ctx: ProbeContext) -> None:
        options = target.options
        assert isinstance(options, S7Options)
        rec = ctx.recorder
        client = await _connect(target, options, ctx)
        refused: list[str] = []
        malformed: list[str] = []
        try:
            for szl_id, index in self.szls:
                request = f"s7 read_szl 0x{szl_id:04X}/0x{index:04X}"
                await ctx.pace()
                try:
                    raw = await client.read_szl(szl_id, index)
                except SzlRefused as exc:
                    rec.evidence_for(request, str(exc))
                    refused.append(f"SZL 0x{szl_id:04X}/0x{index:04X}: {exc}")
                    _unknown(rec, szl_id, _refusal_reason(szl_id, index, exc))
                    continue
                except S7Timeout as exc:
                    raise ProbeTimeout(str(exc)) from None
                except S7Broken as exc:
                    raise ProbeError(str(exc)) from None
                eid = rec.evidence_for(request, raw)
                try:
                    RECORDERS[szl_id](rec, raw, eid)
                except ParseError as exc:
                    malformed.append(str(exc))
                    _unknown(rec, szl_id, f"malformed reply: {exc}")
        finally:
            await client.disconnect()
        for problem in refused:
            rec.error(problem)
        if malformed:
            raise ParseError("; ".join(malformed))
        if len(refused) == len(self.szls):
            raise ProbeRefused("the CPU accepted the S7 connection but refused every SZL read")


class _IdentityRead(S7Probe):
    szls = ((0x0011, 0x0000),)


async def _connect(target: ProbeTarget, options: S7Options,
                   ctx: ProbeContext) -> ReadOnlyS7Client:
    """Connect to the first rack/slot the CPU accepts; record ``s7.classic_access``.

    Only an answer decides it: a COTP disconnect request with a policy reason (or an error
    answer to Setup Communication) is ``false``, a confirmed session ``true``. Silence, a
    closed connection or a reply that is not COTP leave it unknown with the reason."""
    rec = ctx.recorder
    refusals: list[tuple[str, int]] = []
    for rack, slot in options.candidates():
        client = ReadOnlyS7Client(target.host, target.port, ctx.timeout, sent=ctx.sent)
        request = f"s7 connect rack {rack} slot {slot} (COTP connect, setup communication)"
        await ctx.pace()
        try:
            session = await client.connect(rack, slot)
        except CotpRefused as exc:
            refusals.append((f"rack {rack} slot {slot}: {exc}", exc.reason))
            rec.evidence_for(request, f"COTP connection refused: {exc}")
            continue
        except SetupRefused as exc:
            eid = rec.evidence_for(request, f"setup communication rejected: {exc}")
            rec.fact("s7.classic_access", False, eid)
            raise ProbeRefused(f"classic S7 access disabled: rack {rack} slot {slot} "
                               f"rejected setup communication ({exc})") from None
        except TcpFailed as exc:
            if isinstance(exc.error, ConnectionRefusedError):
                raise ConnectionRefusedError(str(exc)) from None
            raise ProbeError(f"network error: {exc}") from None
        except S7Timeout as exc:
            rec.evidence_for(request, f"no answer: {exc}")
            rec.unknown_fact("s7.classic_access", f"no answer to the S7 connection: {exc}")
            raise ProbeTimeout(str(exc)) from None
        except S7Broken as exc:
            rec.evidence_for(request, f"no valid answer: {exc}")
            rec.unknown_fact("s7.classic_access", f"the device did not answer as an S7 CPU "
                             f"would (neither confirmed nor refused): {exc}")
            raise ProbeError(str(exc)) from None
        eid = rec.evidence_for(request, f"COTP connection confirm {session.cotp_reply.hex()}; "
                                        f"setup communication accepted, PDU length "
                                        f"{session.pdu_length}")
        rec.fact("s7.classic_access", True, eid)
        return client
    refused = "; ".join(text for text, _ in refusals)
    reasons = {reason for _, reason in refusals}
    if reasons <= ADDRESS_REFUSALS:
        # Reasons 0x02/0x03 name the TSAP, not the access policy: most likely a wrong slot.
        rec.unknown_fact("s7.classic_access", "no CPU answered at the tried rack/slot "
                         "(COTP reason 'address unknown'): check rack/slot in the inventory")
        raise ProbeRefused(f"no CPU at the tried rack/slot ({refused})")
    if not reasons & POLICY_REFUSALS:  # congestion, protocol errors: no answer to "may I"
        rec.unknown_fact("s7.classic_access", f"the CPU declined the connection for a reason "
                         f"that does not say whether classic access is allowed ({refused})")
        raise ProbeRefused(f"the CPU declined the S7 connection ({refused})")
    eids = [e.id for e in rec.evidence]
    rec.fact("s7.classic_access", False, *eids)
    hint = " - or no CPU at that rack/slot" if reasons & ADDRESS_REFUSALS else ""
    raise ProbeRefused(f"classic S7 access refused at the COTP connection request ({refused})"
                       + hint)


connect_client = _connect  # the recorder (record.py) connects exactly like the probe


def _refusal_reason(szl_id: int, index: int, exc: SzlRefused) -> str:
    """Why the facts of a refused SZL are unknown; 0xD402 is "SZL not available here"."""
    what = f"SZL 0x{szl_id:04X}/0x{index:04X}"
    if SZL_UNAVAILABLE in str(exc).lower():
        return (f"{what} is not available on this CPU (it answered 0xD402, information "
                f"function unavailable: {exc})")
    return f"the CPU refused read_szl {what[4:]}: {exc}"


def _unknown(rec: Recorder, szl_id: int, reason: str) -> None:
    for path in SZL_FACTS[szl_id]:
        rec.unknown_fact(path, reason)


def _record_module(rec: Recorder, raw: bytes, eid: str) -> None:
    ident = parse_module_identification(raw)
    if ident.order_code:
        rec.fact("identity.order_code", ident.order_code, eid)
        vendor, product = vendor_of(ident.order_code), product_of(ident.order_code)
        if vendor:
            rec.fact("identity.vendor", vendor, eid)
        else:
            rec.unknown_fact("identity.vendor",
                             f"order number {ident.order_code!r} has no known vendor prefix")
        if product:
            rec.fact("identity.product", product, eid)
        else:
            rec.unknown_fact("identity.product",
                             f"no product family known for order number {ident.order_code!r}")
    else:
        for path in ("identity.order_code", "identity.vendor", "identity.product"):
            rec.unknown_fact(path, "SZL 0x0011 module record holds no order number")
    rec.fact("identity.hardware_version", ident.hardware_version, eid)
    if ident.firmware_version:
        rec.fact("identity.firmware_version", ident.firmware_version, eid)
    else:
        rec.unknown_fact("identity.firmware_version",
                         "SZL 0x0011 has no basic firmware record (index 0x0007)")


def _record_components(rec: Recorder, raw: bytes, eid: str) -> None:
    texts = parse_component_identification(raw)
    for index, paths in COMPONENT_FACTS.items():
        for path in paths:
            if index not in texts:
                rec.unknown_fact(path, f"SZL 0x001C has no record 0x{index:04X}")
            elif texts[index] or not path.startswith("identity."):
                rec.fact(path, texts[index], eid)
            else:
                rec.unknown_fact(path, f"SZL 0x001C record 0x{index:04X} is empty")


def _record_protection(rec: Recorder, raw: bytes, eid: str) -> None:
    p = parse_protection(raw)
    rec.fact("s7.protection_level", p.effective, eid)
    rec.fact("s7.protection_meaning", p.meaning, eid)
    rec.fact("s7.protection_parametrised", p.parametrised, eid)
    rec.fact("s7.protection_key_switch", p.key_switch, eid)
    rec.fact("s7.password_set", p.parametrised != 0, eid)
    rec.fact("s7.mode_selector", p.mode_selector_name, eid)


def _record_mode(rec: Recorder, raw: bytes, eid: str) -> None:
    rec.fact("s7.cpu_mode", parse_cpu_mode(raw).mode, eid)


RECORDERS: dict[int, Callable[[Recorder, bytes, str], None]] = {
    0x0011: _record_module, 0x001C: _record_components,
    0x0232: _record_protection, 0x0424: _record_mode,
}
