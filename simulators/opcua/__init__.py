"""Simulated OPC UA servers (asyncua) with weak, mixed and hardened security profiles."""
