"""``systemctl is-active`` and ``auditctl -l``."""

from __future__ import annotations

from otaudit.probes.base import ParseError
from otaudit.probes.ssh.parse.common import parser

ACTIVE_STATES = {"active": True, "reloading": True, "inactive": False, "failed": False,
                 "activating": False, "deactivating": False, "unknown": False}


@parser
def parse_is_active(text: str) -> bool:
    """First line of ``systemctl is-active UNIT``."""
    state = text.strip().splitlines()[0].strip() if text.strip() else ""
    if state not in ACTIVE_STATES:
        raise ParseError(f"unexpected unit state {state[:40]!r}")
    return ACTIVE_STATES[state]


@parser
def parse_auditctl_rules(text: str) -> int:
    """Number of loaded audit rules (``No rules`` → 0)."""
    rules = 0
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped == "No rules":
            continue
        if not stripped.startswith("-"):
            raise ParseError(f"not an auditctl rule: {stripped[:60]!r}")
        rules += 1
    return rules
