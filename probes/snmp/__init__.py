"""SNMP probe: identity, firmware and SNMP posture of managed switches and other agents."""
