"""Progress on stderr for work that can take longer than a couple of seconds.

Shown only on a terminal; quiet under ``--json``, ``-q`` / ``--quiet`` or when stderr is
not a terminal (cron, CI, pipes), so scripts never parse a progress bar.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_quiet = False


def set_quiet(quiet: bool) -> None:
    global _quiet
    _quiet = quiet


def enabled(*, json_output: bool = False) -> bool:
    return not (_quiet or json_output) and sys.stderr.isatty()


class Steps:
    """One task of a progress display (a no-op when progress is off)."""

    def __init__(self, bar: Any = None, task: Any = None) -> None:
        self._bar, self._task = bar, task

    def advance(self, n: int = 1, **fields: Any) -> None:
        if self._bar is not None:
            self._bar.update(self._task, advance=n, **fields)

    def update(self, **fields: Any) -> None:
        if self._bar is not None:
            self._bar.update(self._task, **fields)


@contextmanager
def progress(description: str, total: int | None = None, *, show: bool | None = None,
             detail: str = "") -> Iterator[Steps]:
    """``with progress("documents") as steps: steps.advance()``; ``detail`` is a format of
    the task's fields shown after the count (e.g. ``"rejected {task.fields[rejected]}"``)."""
    if not (enabled() if show is None else show):
        yield Steps()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description}")]
    columns += [BarColumn(), MofNCompleteColumn()] if total else [
        TextColumn("{task.completed}")]
    if detail:
        columns.append(TextColumn(detail))
    columns.append(TimeElapsedColumn())
    fields = {name: 0 for name in _field_names(detail)}
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        yield Steps(bar, bar.add_task(description, total=total, **fields))


def _field_names(detail: str) -> list[str]:
    import re

    return re.findall(r"task\.fields\[(\w+)\]", detail)
