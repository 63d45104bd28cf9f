"""Facts the S7 probe can produce (docs/facts.md, sections identity and s7)."""

from __future__ import annotations

from otaudit.facts import IDENTITY, FactSpec

FACTS: dict[str, FactSpec] = {
    **{path: IDENTITY[path] for path in (
        "identity.vendor", "identity.product", "identity.model", "identity.order_code",
        "identity.firmware_version", "identity.hardware_version", "identity.serial",
        "identity.name",
    )},
    "s7.classic_access": FactSpec(
        "bool", "Classic S7comm session accepted (false when refused: S7-1200 >= V4.5 / "
        "S7-1500 full protection)"),
    "s7.module_name": FactSpec("str", "SZL 0x001C idx 2: name of the module"),
    "s7.module_type": FactSpec("str", "SZL 0x001C idx 7: module type name"),
    "s7.plant_id": FactSpec("str", "SZL 0x001C idx 3: plant designation"),
    "s7.location": FactSpec("str", "SZL 0x001C idx 0x0B: location designation"),
    "s7.copyright": FactSpec("str", "SZL 0x001C idx 4: copyright"),
    "s7.protection_level": FactSpec(
        "int", "Effective protection level sch_rel (1 none, 2 write, 3 read/write)"),
    "s7.protection_meaning": FactSpec(
        "enum", "Meaning of sch_rel", ("no protection", "write protection",
                                       "read/write protection")),
    "s7.protection_parametrised": FactSpec("int", "sch_par (0 = no password set)"),
    "s7.protection_key_switch": FactSpec("int", "sch_schal: level set by the mode selector"),
    "s7.password_set": FactSpec("bool", "sch_par != 0"),
    "s7.mode_selector": FactSpec(
        "enum", "bart_sch meaning", ("RUN", "RUN-P", "STOP", "MRES", "undefined")),
    "s7.cpu_mode": FactSpec(
        "str", "SZL 0x0424: RUN, STOP, STARTUP, HOLD, DEFECT or unknown(0xNN)"),
}
