"""Simulated Siemens S7 CPUs."""
