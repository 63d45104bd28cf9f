"""Errors a user can act on, each with its exit code (README: "Exit codes").

Every command ends with one of ``ExitCode``; ``otaudit.cli.main`` turns an ``OtauditError``
into one message on stderr and its code, never a traceback (``-v`` / ``OTAUDIT_DEBUG=1``
show the traceback when someone asks for it).
"""

from __future__ import annotations

from enum import IntEnum
from pathlib import Path
from typing import ClassVar


class ExitCode(IntEnum):
    OK = 0  # done, and nothing that --fail-on names was found
    FOUND = 1  # done, and found what --fail-on names (or lint/validate problems, rejects, …)
    BAD_INPUT = 2  # an option, file, field or name (zone, profile, protocol) is wrong
    STATE = 3  # local state missing or unusable: no database yet, outbox, signing key
    UNREACHABLE = 4  # a service cannot be reached: broker, database server
    INTERNAL = 70  # a bug in otaudit (EX_SOFTWARE): please report it with -v output
    INTERRUPTED = 130  # Ctrl-C


class OtauditError(Exception):
    """A problem the user can fix; ``hint`` says how."""

    exit_code: ClassVar[ExitCode] = ExitCode.BAD_INPUT

    def __init__(self, message: str, *, hint: str | None = None):
        self.message = message
        self.hint = hint
        super().__init__(message)

    def __str__(self) -> str:
        return self.message + (f"\n  hint: {self.hint}" if self.hint else "")


class InputError(OtauditError):
    """Bad user input: says which file, where in it, and what was expected."""

    exit_code = ExitCode.BAD_INPUT

    def __init__(self, source: str | Path, problems: list[str], *, hint: str | None = None):
        self.source = str(source)
        self.problems = problems
        lines = [f"{self.source}: {len(problems)} problem(s)"]
        lines += [f"  - {p}" for p in problems]
        super().__init__("\n".join(lines), hint=hint)


class UnknownName(InputError):
    """A name that is not among the known ones (zone, profile, protocol, …): lists them."""

    def __init__(self, what: str, name: str, known: list[str] | tuple[str, ...],
                 *, source: str = "command line"):
        self.what, self.name, self.known = what, name, list(known)
        listed = ", ".join(sorted(self.known)) or "none"
        super().__init__(source, [f"unknown {what} {name!r}; known: {listed}"])


class StateError(OtauditError):
    """Local state is missing or unusable (no database yet, outbox, signing key)."""

    exit_code = ExitCode.STATE


class Unreachable(OtauditError):
    """A service (broker, database server) cannot be reached; names host:port."""

    exit_code = ExitCode.UNREACHABLE


def pydantic_problems(exc: object, locate: "callable | None" = None) -> list[str]:  # noqa: UP037
    """Render a pydantic ValidationError as 'field.path: message' lines.

    ``locate`` maps a location tuple to a 'line N' string when the caller knows lines.
    """
    problems = []
    for err in exc.errors():  # type: ignore[attr-defined]
        loc = tuple(err.get("loc", ()))
        path = ".".join(str(p) for p in loc) or "(top level)"
        where = f" ({locate(loc)})" if locate and locate(loc) else ""
        msg = err.get("msg", "invalid").removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            msg = "unknown field"
        problems.append(f"{path}{where}: {msg}")
    return problems
