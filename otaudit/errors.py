"""Errors that carry where bad input was found (file, line, field)."""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """Bad user input: says which file, where in it, and what was expected."""

    def __init__(self, source: str | Path, problems: list[str]):
        self.source = str(source)
        self.problems = problems
        super().__init__(self.__str__())

    def __str__(self) -> str:
        lines = [f"{self.source}: {len(self.problems)} problem(s)"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


def pydantic_problems(exc: object, locate: "callable | None" = None) -> list[str]:  # noqa: UP037
    """Render a pydantic ValidationError as 'field.path: message' lines.

    ``locate`` maps a location tuple to a 'line N' string when the caller knows lines.
    """
    problems = []
    for err in exc.errors():  # type: ignore[attr-defined]
        loc = tuple(err.get("loc", ()))
        path = ".".join(str(p) for p in loc) or "(top level)"
        where = f" ({locate(loc)})" if locate and locate(loc) else ""
        msg = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            msg = "unknown field"
        problems.append(f"{path}{where}: {msg}")
    return problems
