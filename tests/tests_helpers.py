"""Helpers importable from tests (conftest fixtures are not importable)."""

from conftest import free_tcp_port, free_udp_port, missing_service, require_tool

__all__ = ["free_tcp_port", "free_udp_port", "missing_service", "require_tool"]
