"""Modbus/TCP probe: Read Device Identification (FC 43/14), read-only."""
