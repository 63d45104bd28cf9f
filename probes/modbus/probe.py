"""Modbus/TCP probe: who is this device? (Read Device Identification, FC 43 / MEI 14).

Reads the basic, then regular, then extended objects, as far as the conformity level
of the first reply allows, following ``more follows`` with a bounded number of
requests on one connection. Sends read requests only (see ``guard.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Self

from pydantic import Field, field_validator

from otaudit.observation import AssetKind
from otaudit.probes.base import (
    Probe,
    ProbeContext,
    ProbeError,
    ProbeOptions,
    ProbeTarget,
    Recorder,
)
from otaudit.probes.modbus.client import ModbusSession
from otaudit.probes.modbus.facts import FACTS
from otaudit.probes.modbus.parse import (
    IDENTITY_OBJECTS,
    READ_CODE_NAMES,
    DeviceIdReply,
    ExceptionReply,
    identity_facts,
    object_table,
    parse_device_id_reply,
)

MAX_REQUESTS = 12  # for all categories together; a well-behaved device needs 3-5
FIRST_OBJECT = {1: 0x00, 2: 0x03, 3: 0x80}  # where each category starts


class ModbusOptions(ProbeOptions):
    unit: int = Field(1, ge=0, le=255, description="unit id (0-255)")
    read_codes: list[int] | None = Field(
        None, description="device id categories to read, e.g. 1,2 (1 basic, 2 regular, "
        "3 extended); default: all that the device's conformity level announces")

    @field_validator("read_codes")
    @classmethod
    def _known_codes(cls, codes: list[int] | None) -> list[int] | None:
        if codes is not None and (not codes or any(c not in FIRST_OBJECT for c in codes)):
            raise ValueError("read codes are 1 (basic), 2 (regular) or 3 (extended)")
        return codes

    @classmethod
    def from_cli(cls, flags: Mapping[str, Any]) -> Self:
        values = {k.replace("-", "_"): v for k, v in flags.items()}
        if isinstance(values.get("read_codes"), str):
            values["read_codes"] = [c for c in values["read_codes"].split(",") if c.strip()]
        return cls.model_validate(values)


class ModbusProbe(Probe):
    name = "modbus"
    version = "1.0"
    typical_seconds = 0.25  # a dozen paced requests at most (bench/RESULTS.md medians)
    default_port = 502
    default_kind = AssetKind.PLC
    Options = ModbusOptions
    facts = FACTS

    async def collect(self, target: ProbeTarget, ctx: ProbeContext) -> None:
        options = target.options
        if not isinstance(options, ModbusOptions):
            options = ModbusOptions.model_validate(options.model_dump())
        ctx.recorder.unknown_fact("modbus.secure_port_open",
                                  "not probed: Modbus/TCP Security (port 802) is not checked yet")
        read = _Identification()
        try:
            async with ModbusSession(target.host, target.port, unit=options.unit,
                                     timeout=ctx.timeout, sent=ctx.sent) as session:
                for code in options.read_codes or [1, 2, 3]:
                    if (read.first and options.read_codes is None
                            and code > read.first.conformity & 0x7F):
                        break  # the device announced it has no objects of this category
                    if not await read.category(session, ctx, options.unit, code):
                        break
            read.complete = True
        finally:
            read.record(ctx.recorder)


    async def identify(self, target: ProbeTarget, ctx: ProbeContext) -> None:
        """The basic objects only (vendor, product code, revision): one request or two."""
        options = target.options
        if not isinstance(options, ModbusOptions):
            options = ModbusOptions.model_validate(options.model_dump())
        await self.collect(replace(target, options=options.model_copy(
            update={"read_codes": [1]})), ctx)


class _Identification:
    """Objects collected over one connection, with the evidence each came from."""

    def __init__(self) -> None:
        self.first: DeviceIdReply | None = None
        self.first_eid = ""
        self.objects: dict[int, bytes] = {}
        self.sources: dict[int, str] = {}  # object id → evidence id
        self.requests = 0
        self.complete = False  # the reading ended as the device said, not cut short

    async def category(self, session: ModbusSession, ctx: ProbeContext, unit: int,
                       code: int) -> bool:
        """Read one category, following ``more follows``; False: read no further."""
        rec, object_id = ctx.recorder, FIRST_OBJECT[code]
        while True:
            if self.requests >= MAX_REQUESTS:
                rec.error(f"stopped after {MAX_REQUESTS} device identification requests")
                return False
            self.requests += 1
            await ctx.pace()
            raw = await session.read_device_id(code, object_id)
            eid = rec.evidence_for(
                f"modbus unit {unit} FC43/14 read device identification code {code} "
                f"({READ_CODE_NAMES[code]}) from object 0x{object_id:02x} "
                f"[request pdu 2b0e{code:02x}{object_id:02x}]", raw)
            reply = parse_device_id_reply(raw)
            if isinstance(reply, ExceptionReply):
                if self.first is None:
                    _refused(rec, reply, eid)
                rec.error(f"{READ_CODE_NAMES[code]} device identification: "
                          f"{reply.describe()}; kept the objects read before")
                return False
            if self.first is None:
                self.first, self.first_eid = reply, eid
            self.objects.update(reply.objects)
            self.sources.update(dict.fromkeys(reply.objects, eid))
            if not reply.more_follows:
                return True
            if reply.next_object_id <= object_id:
                rec.error(f"device announced more objects from 0x{reply.next_object_id:02x}, "
                          f"which is not after 0x{object_id:02x}; not followed")
                return True
            object_id = reply.next_object_id

    def record(self, rec: Recorder) -> None:
        if self.first is None:
            return
        eid = self.first_eid
        rec.fact("modbus.device_id_supported", True, eid)
        rec.fact("modbus.unauthenticated_read", True, eid)
        rec.fact("modbus.device_id_conformity", self.first.conformity, eid)
        every = sorted(set(self.sources.values()), key=lambda e: int(e[1:])) or [eid]
        if self.complete:
            rec.fact("modbus.device_id_objects", object_table(self.objects), *every)
        else:  # a partial table is no statement of what the device holds
            rec.unknown_fact("modbus.device_id_objects", "incomplete: the reading was cut "
                             "short by a failed request (the objects read are in the evidence)")
        facts = identity_facts(self.objects)
        for object_id, path in IDENTITY_OBJECTS.items():
            if path in facts:
                rec.fact(path, facts[path], self.sources[object_id])
            elif object_id in self.objects:
                rec.unknown_fact(path, f"object 0x{object_id:02x} is empty or not text")


def _refused(rec: Recorder, reply: ExceptionReply, eid: str) -> None:
    """The very first request was answered with an exception: end the run."""
    if reply.code == 0x01:
        rec.fact("modbus.device_id_supported", False, eid)
        raise ProbeError(f"{reply.describe()}: device identification not supported")
    raise ProbeError(f"{reply.describe()} to read device identification")
