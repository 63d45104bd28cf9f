"""Simulated SSH devices: Linux HMI hosts, switch CLIs and a legacy-crypto device."""
