"""Facts the Modbus probe can produce (docs/facts.md, sections identity and modbus)."""

from __future__ import annotations

from otaudit.facts import IDENTITY, FactSpec

FACTS: dict[str, FactSpec] = {
    **{path: IDENTITY[path] for path in (
        "identity.vendor", "identity.order_code", "identity.firmware_version",
        "identity.product", "identity.model",
    )},
    "modbus.device_id_supported": FactSpec(
        "bool", "FC 43/14 answered (false when the device answered exception 01)"),
    "modbus.device_id_conformity": FactSpec("int", "Conformity level byte of the first reply"),
    "modbus.device_id_objects": FactSpec(
        "dict", "Object id (hex string 0x00) → decoded string, every object read"),
    "modbus.unauthenticated_read": FactSpec(
        "bool", "A read request was answered without any authentication"),
    "modbus.secure_port_open": FactSpec(
        "bool", "Reserved for Modbus/TCP Security (802); not yet probed"),
}
