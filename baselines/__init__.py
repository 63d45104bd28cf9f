"""Data only: the IEC 62443 catalogue, checks, controls and examples as YAML.

This marker makes the folder an importable package so the YAML ships with otaudit.
"""
