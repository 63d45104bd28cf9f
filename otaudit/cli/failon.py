"""``--fail-on``: which results make a command exit 1, for cron jobs and CI pipelines.

``report``, ``gap``, ``patch status`` and ``collector run --once`` take
``--fail-on fail,unknown,…``; each command accepts the conditions it can judge. Without
``--fail-on`` they exit 0 whatever they found (the result is the report).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum

import typer

from otaudit.errors import ExitCode, InputError


class FailOn(StrEnum):
    FAIL = "fail"  # a check failed / a requirement is not met
    CAPABILITY_GAP = "capability_gap"  # the device cannot do what the SL-T needs
    UNKNOWN = "unknown"  # a check or requirement could not be decided
    OPEN_ADVISORY = "open-advisory"  # an asset is affected by an advisory, not yet patched
    DEVICE_ERROR = "device-error"  # a device could not be fully read (error, timeout, …)


HELP = "exit 1 when any of these is found (comma list): {}"


def fail_on_help(allowed: Iterable[FailOn]) -> str:
    return HELP.format(", ".join(a.value for a in allowed))


def parse_fail_on(value: str | None, allowed: Iterable[FailOn]) -> set[FailOn]:
    """``"fail,unknown"`` -> {FAIL, UNKNOWN}; InputError names what the command accepts."""
    allowed = tuple(allowed)
    if not value:
        return set()
    chosen, problems = set(), []
    by_name = {a.value.replace("_", "-"): a for a in allowed}
    for item in filter(None, (p.strip() for p in value.split(","))):
        condition = by_name.get(item.replace("_", "-").lower())
        if condition is None:
            problems.append(f"--fail-on {item!r}: this command can check "
                            f"{', '.join(a.value for a in allowed)}")
        else:
            chosen.add(condition)
    if problems:
        raise InputError("command line", problems)
    return chosen


def exit_on(requested: set[FailOn], found: Mapping[FailOn, int]) -> None:
    """Exit 1 (after saying why on stderr) when a requested condition was found."""
    hits = {c: n for c, n in found.items() if c in requested and n}
    if hits:
        listed = ", ".join(f"{c.value} {n}" for c, n in sorted(hits.items()))
        typer.echo(f"--fail-on: found {listed}", err=True)
        raise typer.Exit(ExitCode.FOUND)
