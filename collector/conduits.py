"""Conduit verification jobs: from the zone the collector sits in, which services of the
assets of other zones should answer (a conduit allows them) and which should not.

For every asset outside ``collector_zone``, the ports to try are its endpoints' ports and
the ports of the flows a conduit allows from the collector's zone into the asset's zone
(``from`` = that zone, ``to`` = the asset's, or ``bidirectional``). A port is *allowed*
when such a flow names it, or names the endpoint's protocol without ports, or is ``any``.
Zones without a conduit between them allow nothing. The ``reach`` probe tests each port.
"""

from __future__ import annotations

from otaudit.inventory import Asset, Conduit, Inventory
from otaudit.observation import AssetRef
from otaudit.probes.base import ProbeTarget
from otaudit.probes.reach.probe import ReachOptions, ReachPort, ReachProbe

# Flow protocol names (inventory, free text) that name a probe's protocol.
FLOW_ALIASES = {"opc-ua": "opcua", "ethernet-ip": "enip", "cip": "enip", "iso-tsap": "s7"}


def reach_job(inventory: Inventory, asset: Asset, default_ports: dict[str, int]
              ) -> tuple[ReachProbe, ProbeTarget] | None:
    """The reach run for ``asset``, or None (same zone, no collector zone, no conduits)."""
    here = inventory.collector_zone
    if here is None or not inventory.conduits or asset.zone == here:
        return None
    flows = [(conduit, flow) for conduit in _between(inventory.conduits, here, asset.zone)
             for flow in conduit.flows
             if (flow.source == here and flow.to == asset.zone) or (
                 flow.bidirectional and {flow.source, flow.to} == {here, asset.zone})]
    ports: dict[int, ReachPort] = {}
    host = next(iter(asset.endpoints.values())).host
    for protocol, endpoint in asset.endpoints.items():
        port = endpoint.port or default_ports.get(protocol)
        if not port:
            continue
        allowed = next((c.id for c, f in flows if _allows(f.protocol, f.ports, protocol, port)),
                       None)
        ports[port] = ReachPort(port=port, protocol=protocol, allowed=allowed is not None,
                                conduit=allowed)
    for conduit, flow in flows:
        for port in flow.ports:
            if port not in ports:
                ports[port] = ReachPort(port=port, protocol=flow.protocol, allowed=True,
                                        conduit=conduit.id)
    if not ports:
        return None
    ref = AssetRef(id=asset.id, kind=asset.kind, zone=asset.zone, name=asset.name)
    options = ReachOptions(from_zone=here, ports=sorted(ports.values(), key=lambda p: p.port))
    return ReachProbe(), ProbeTarget(asset=ref, host=host, port=ports[min(ports)].port,
                                     options=options)


def _between(conduits: list[Conduit], a: str, b: str) -> list[Conduit]:
    return [c for c in conduits if set(c.between) == {a, b}]


def _allows(flow_protocol: str, flow_ports: list[int], protocol: str, port: int) -> bool:
    if port in flow_ports or flow_protocol == "any":
        return True
    return not flow_ports and FLOW_ALIASES.get(flow_protocol, flow_protocol) == protocol
