"""otaudit: read-only auditor of industrial (OT) assets for IEC 62443.

This package holds what every part shares: the observation schema, the inventory
model, settings, secret references and the CLI entry point.
"""

__version__ = "0.1.0"
