"""Probe registry: one line per protocol. Probes are imported only when used.

To add a protocol, create ``probes/<name>/`` (client, pure parse functions, facts,
a ``Probe`` subclass) and add one line here.
"""

from __future__ import annotations

import importlib

from otaudit.facts import DECLARED, IDENTITY, FactSpec
from otaudit.probes.base import Probe

REGISTRY: dict[str, str] = {
    "modbus": "otaudit.probes.modbus.probe:ModbusProbe",
    "s7": "otaudit.probes.s7.probe:S7Probe",
    "snmp": "otaudit.probes.snmp.probe:SnmpProbe",
    "ssh": "otaudit.probes.ssh.probe:SshProbe",
    "winrm": "otaudit.probes.winrm.probe:WinrmProbe",
    "enip": "otaudit.probes.enip.probe:EnipProbe",
    "opcua": "otaudit.probes.opcua.probe:OpcUaProbe",
}


class UnknownProbe(KeyError):
    pass


def probe_class(name: str) -> type[Probe]:
    try:
        module, _, attr = REGISTRY[name].partition(":")
    except KeyError:
        raise UnknownProbe(f"unknown protocol {name!r}; known: {', '.join(REGISTRY)}") from None
    return getattr(importlib.import_module(module), attr)


def get_probe(name: str) -> Probe:
    return probe_class(name)()


# Probes the collector runs on its own, not per endpoint protocol (no CLI, no discovery).
COLLECTOR_PROBES: dict[str, str] = {
    "reach": "otaudit.probes.reach.probe:ReachProbe",  # conduit verification
}


def fact_catalogue() -> dict[str, FactSpec]:
    """Every fact path any probe can produce (for baseline lint)."""
    catalogue = dict(IDENTITY) | DECLARED  # declared: the inventory's conduits per zone
    for name in REGISTRY:
        catalogue.update(probe_class(name).facts)
    for path in COLLECTOR_PROBES.values():
        module, _, attr = path.partition(":")
        catalogue.update(getattr(importlib.import_module(module), attr).facts)
    return catalogue
