"""The collector: audits the inventory's assets with the probes and publishes observations."""
