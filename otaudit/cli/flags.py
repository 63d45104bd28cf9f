"""Turns free ``--flag value`` arguments into a dict for a probe's or simulator's options."""

from __future__ import annotations

from otaudit.errors import InputError


def parse_extra_flags(args: list[str], source: str = "command line") -> dict[str, str | bool]:
    """``['--unit', '2', '--allow-legacy']`` → ``{'unit': '2', 'allow-legacy': True}``."""
    flags: dict[str, str | bool] = {}
    i = 0
    while i < len(args):
        token = args[i]
        if not token.startswith("--") or token == "--":
            raise InputError(
                source, [f"unexpected argument {token!r} (options look like --name value)"]
            )
        name, eq, value = token[2:].partition("=")
        if eq:
            flags[name] = value
        elif i + 1 < len(args) and not args[i + 1].startswith("--"):
            flags[name] = args[i + 1]
            i += 1
        else:
            flags[name] = True
        i += 1
    return flags
