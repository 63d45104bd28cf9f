"""Command results of one session, turned into facts group by group.

A group reads one or more outputs and yields several facts. If any output it needs
is unavailable (command missing, failed, timed out, too large) or does not parse, all
facts of that group become unknown with that reason; other groups are unaffected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from otaudit.probes.base import ParseError, Recorder
from otaudit.probes.ssh.client import MAX_OUTPUT, CommandResult
from otaudit.probes.ssh.parse.common import ISSUES, Unknown, decode_text, redact_secrets


class Unavailable(Exception):
    """An output the group needs is missing; the message is the unknown reason."""


def _first_line(data: bytes) -> str:
    text = data.decode("utf-8", "replace").strip()
    return text.splitlines()[0][:120] if text else ""


class Outputs:
    """Results by command, with evidence ids and failure semantics per personality
    (``via``: how the commands reached the host, first words of each evidence request)."""

    def __init__(self, rec: Recorder, results: dict[str, CommandResult], personality: str,
                 timeout: float, redact: bool = False, via: str = "ssh exec") -> None:
        self.rec = rec
        self.results = results
        self.personality = personality
        self.timeout = timeout
        self.via = via
        self.eids: dict[str, str] = {}
        self._touched: list[str] = []
        for command, result in results.items():
            raw = result.stdout if result.stdout or not result.stderr else result.stderr
            if redact and raw:
                raw = redact_secrets(raw.decode("utf-8", "replace")).encode()
            status = "timed out" if result.timed_out else f"exit {result.exit_status}"
            self.eids[command] = rec.evidence_for(f"{via} {command!r} ({status})", raw)

    def _failure(self, command: str, result: CommandResult) -> str | None:
        if result.timed_out:
            return f"{command!r} gave no complete answer within {self.timeout:g} s"
        if result.truncated:
            return f"{command!r} output exceeded {MAX_OUTPUT} bytes"
        text = result.stdout.decode("utf-8", "replace")
        if self.personality == "cisco_ios" and any(
                line.startswith(("% Invalid input", "% Unknown command", "% Authorization",
                                 "% Incomplete command", "% Ambiguous command"))
                for line in text.splitlines()):
            return f"the device rejected {command!r}: {text.strip().splitlines()[-1][:100]}"
        if self.personality == "hirschmann_hios" and text.lstrip().startswith("Error:"):
            return f"the device rejected {command!r}: {_first_line(result.stdout)}"
        if self.personality == "windows" and b"is not recognized as the name of a" in \
                result.stderr:
            return f"{command[:60]!r}: cmdlet or program not found on the host"
        if result.exit_status == 127 or b"command not found" in result.stderr:
            return f"{command!r}: command not found on the device"
        return None

    def text(self, command: str, *, missing_ok: bool = False,
             any_exit: bool = False) -> str | None:
        """Decoded stdout of ``command``.

        ``missing_ok``: None when ``cat`` says the file does not exist. ``any_exit``: a
        non-zero exit status is normal for this command (``systemctl is-active``).
        """
        result = self.results.get(command)
        if result is None:
            raise Unavailable(f"{command!r} was not run")
        self._touched.append(command)
        failure = self._failure(command, result)
        if failure:
            raise Unavailable(failure)
        if result.exit_status not in (0, None) and not any_exit:
            if missing_ok and (b"No such file or directory" in result.stderr
                               or b"because it does not exist" in result.stderr):
                return None
            raise Unavailable(f"{command!r} failed (exit {result.exit_status}): "
                              f"{_first_line(result.stderr or result.stdout)}")
        return decode_text(result.stdout)

    def optional(self, command: str) -> str | None:
        """Like ``text(missing_ok=True)`` but an unavailable output is also None."""
        try:
            return self.text(command, missing_ok=True)
        except Unavailable:
            return None

    def group(self, paths: Iterable[str], build: Callable[[], dict[str, object]]) -> None:
        """Record the facts ``build`` returns; on failure all ``paths`` become unknown."""
        paths = list(paths)
        self._touched = []
        try:
            values = build()
        except Unavailable as exc:
            values = dict.fromkeys(paths, Unknown(str(exc)))
        except ParseError as exc:
            what = ", ".join(repr(c) for c in dict.fromkeys(self._touched)) or "output"
            values = dict.fromkeys(paths, Unknown(f"could not parse {what}: {exc}"))
        eids = [self.eids[c] for c in dict.fromkeys(self._touched) if c in self.eids]
        for command, issues in (values.pop(ISSUES, None) or {}).items():
            for number, line, why in issues.items:
                eids.append(self.rec.evidence_for(
                    f"{self.via} {command!r}: line {number} skipped ({why})", line))
                self.rec.error(f"{command}: line {number} skipped ({why}); the other "
                               "lines were read")
        absent = Unknown("not stated in " + ", ".join(
            repr(c) for c in dict.fromkeys(self._touched)))
        for path in paths:
            value = values.get(path)
            value = absent if value is None else value
            if isinstance(value, Unknown):
                self.rec.unknown_fact(path, value.reason)
            else:
                self.rec.fact(path, value, *eids)
