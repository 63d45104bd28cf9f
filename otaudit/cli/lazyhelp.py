"""Commands generated per protocol whose ``--help`` lists options known only to the protocol.

The protocol's own options (a probe's ``Options`` model, a simulator's ``CLI_OPTIONS``)
and its bundled profiles are read only when help is shown, so that starting ``otaudit``
imports no protocol stack.
"""

from __future__ import annotations

from collections.abc import Callable

from typer.core import TyperCommand


def lazy_epilog_command(text: Callable[[], str]) -> type[TyperCommand]:
    """A command class whose epilog is ``text()``, computed when help is rendered."""

    class LazyEpilogCommand(TyperCommand):
        @property  # type: ignore[override]
        def epilog(self) -> str:
            try:
                return text()
            except Exception as exc:  # a protocol stack that does not import here
                return f"(options unavailable: {type(exc).__name__}: {exc})"

        @epilog.setter
        def epilog(self, _value: str | None) -> None:
            pass

    return LazyEpilogCommand


def option_lines(title: str, options: dict[str, str]) -> str:
    """``title`` then one ``--flag  description`` line per option (help text block)."""
    width = max((len(flag) for flag in options), default=0) + 2
    lines = [f"{flag:<{width}}{description}" for flag, description in options.items()]
    return f"{title}\n\n" + "\n\n".join(lines) if lines else f"{title} none"
