"""Simulated Modbus/TCP devices (pymodbus server) built from YAML profiles."""
