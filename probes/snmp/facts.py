"""Facts the SNMP probe can record (contract: docs/facts.md, section snmp)."""

from __future__ import annotations

from otaudit.facts import IDENTITY, FactSpec
from otaudit.observation import AssetKind

FACTS: dict[str, FactSpec] = {
    **IDENTITY,
    "snmp.sys_descr": FactSpec("str", "sysDescr.0"),
    "snmp.sys_object_id": FactSpec("str", "sysObjectID.0 (dotted)"),
    "snmp.sys_uptime": FactSpec("int", "sysUpTime.0 in timeticks (1/100 s)"),
    "snmp.sys_contact": FactSpec("str", "sysContact.0"),
    "snmp.sys_name": FactSpec("str", "sysName.0"),
    "snmp.sys_location": FactSpec("str", "sysLocation.0"),
    "snmp.versions_answering": FactSpec(
        "list", "SNMP versions that answered with the configured credential (v1, v2c, v3)"),
    "snmp.v1_enabled": FactSpec("bool", "SNMPv1 answered (false: agent up, v1 silent)"),
    "snmp.v2c_enabled": FactSpec("bool", "SNMPv2c answered (false: agent up, v2c silent)"),
    "snmp.v3_enabled": FactSpec("bool", "SNMPv3 answered (engine discovery or configured user)"),
    "snmp.v3_security_level": FactSpec(
        "str", "noAuthNoPriv, authNoPriv or authPriv of the configured v3 user that answered"),
    "snmp.v3_auth_protocol": FactSpec("str", "authentication protocol of that user (SHA, ...)"),
    "snmp.v3_priv_protocol": FactSpec("str", "privacy protocol of that user (AES-128, ...)"),
    "snmp.engine_id": FactSpec("str", "SNMPv3 authoritative engine ID (hex), from discovery"),
    "snmp.default_communities_accepted": FactSpec(
        "list", "well-known communities the agent answered (credential_checks only)"),
    "snmp.entities": FactSpec("list", "ENTITY-MIB entPhysicalTable rows"),
    "snmp.interfaces": FactSpec("list", "IF-MIB interfaces {index, name, admin, oper}"),
    "snmp.interfaces_up_unused": FactSpec("int", "interfaces admin up and oper down"),
    "services.listening": FactSpec(
        "list", "listening sockets {proto, address, port, process: null} from the TCP-MIB/"
        "UDP-MIB listener tables"),
    "mgmt.telnet_enabled": FactSpec("bool", "Telnet management access enabled"),
    "mgmt.http_enabled": FactSpec("bool", "HTTP management server enabled"),
    "mgmt.https_enabled": FactSpec("bool", "HTTPS management server enabled"),
    "mgmt.modbus_listening": FactSpec("bool", "Modbus/TCP (502) listening, not on loopback"),
    "mgmt.s7_listening": FactSpec("bool", "S7comm / ISO-on-TCP (102) listening, not on loopback"),
    "snmp.sys_contact_set": FactSpec(
        "bool", "sysContact holds a value that is not empty nor a vendor placeholder"),
    "snmp.sys_location_set": FactSpec(
        "bool", "sysLocation holds a value that is not empty nor a vendor placeholder"),
    "snmp.management_card": FactSpec(
        "dict", "identity of the agent's management card {vendor, model, firmware_version, "
        "hardware_version, serial}, kept apart from the managed device's identity.*"),
    "snmp.device_kind": FactSpec(
        "enum", "kind of device the vendor rule names (an AssetKind value)",
        values=tuple(kind.value for kind in AssetKind)),
}
