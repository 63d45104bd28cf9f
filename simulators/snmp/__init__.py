"""Simulated SNMP agent (pysnmp command responder) serving profiles or device recordings."""
