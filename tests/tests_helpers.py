"""Helpers importable from tests (conftest fixtures are not importable)."""

from __future__ import annotations

import queue
import re
import subprocess
import threading
import time
from pathlib import Path

from conftest import free_tcp_port, free_udp_port, missing_service, require_tool

__all__ = ["doc_blocks", "free_tcp_port", "free_udp_port", "missing_service",
           "require_tool", "wait_for_line"]

EXTENDING_DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"


def doc_blocks(section: str, doc: Path = EXTENDING_DOC) -> dict[str, list[str]]:
    """The fenced code blocks of one ``## section`` of a document, by language (list items'
    three-space indent removed), so that a test runs a worked example as it is written."""
    text = doc.read_text()
    part = text[text.index(f"## {section}"):]
    part = part[:part.find("\n## ", 5)] if "\n## " in part[5:] else part
    blocks: dict[str, list[str]] = {}
    for lang, body in re.findall(r"```(\w+)\n(.*?)```", part, re.DOTALL):
        lines = [line[3:] if line.startswith("   ") else line for line in body.splitlines()]
        blocks.setdefault(lang, []).append("\n".join(lines).strip() + "\n")
    return blocks


def wait_for_line(proc: subprocess.Popen, needle: str, timeout: float = 20.0) -> str:
    """Read ``proc``'s stderr until a line containing ``needle`` (the readiness line).

    Lines before it (a library's warning, a log line) are skipped, never asserted on; the
    rest of stderr keeps being drained in the background so the process never blocks on a
    full pipe. Fails with everything read so far when the line does not come in time.
    """
    assert proc.stderr is not None
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for raw in proc.stderr:
            lines.put(raw.decode(errors="replace") if isinstance(raw, bytes) else raw)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        seen.append(line)
        if needle in line:
            return line
    raise AssertionError(f"no line with {needle!r} within {timeout:g} s; stderr so far: {seen}")
