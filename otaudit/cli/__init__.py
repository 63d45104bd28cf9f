"""The ``otaudit`` command line: wires collector, probes, server and simulators.

Nothing imports this package; it is the only place allowed to reach both the
server and the simulators.
"""
