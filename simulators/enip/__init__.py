"""Simulated EtherNet/IP devices (ListIdentity, Identity object, CIP Security port)."""
