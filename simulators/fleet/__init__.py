"""A plant of N simulated devices on loopback, spread over worker processes.

``layout`` decides (deterministically for a seed) which device sits where: its kind,
profile, misbehaviour, loopback address 127.0.x.y and the inventory endpoint the
collector needs. ``launcher`` starts the devices in one worker process per core
(``worker``) and writes the inventory; ``politeness`` checks the request logs the
workers dump on exit (one connection per device, minimum interval between requests).
"""

from otaudit.simulators.fleet.launcher import Fleet
from otaudit.simulators.fleet.layout import DeviceSpec, PlantLayout, generate_layout

__all__ = ["DeviceSpec", "Fleet", "PlantLayout", "generate_layout"]
