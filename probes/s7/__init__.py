"""Siemens S7 probe (S7comm over ISO-on-TCP, read-only SZL reads)."""
