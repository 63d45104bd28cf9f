"""Helpers shared by the benchmarks: machine facts, RESULTS.md sections, child processes
with their peak RSS, a private Mosquitto, tables.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "RESULTS.md"
VENV_BIN = Path(sys.executable).parent
OTAUDIT = str(VENV_BIN / "otaudit") if (VENV_BIN / "otaudit").exists() else "otaudit"
MIB = 1024 * 1024


def command_line() -> str:
    """How this benchmark was started, relative to the repository root."""
    script = Path(sys.argv[0]).resolve()
    with contextlib.suppress(ValueError):
        script = script.relative_to(REPO)
    return shlex.join([".venv/bin/python", str(script), *sys.argv[1:]])


def _first_line(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "absent"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else "?"


def machine() -> dict[str, str]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError, IndexError, ValueError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / MIB:.0f} GiB"
    os_name = platform.platform()
    with contextlib.suppress(OSError):
        match = re.search(r'PRETTY_NAME="([^"]+)"', Path("/etc/os-release").read_text())
        if match:
            os_name = match.group(1)
    return {"cpu": f"{cpu}, {os.cpu_count()} cores", "memory": mem, "os": os_name,
            "python": platform.python_version()}


def tool_version(name: str) -> str:
    if shutil.which(name) is None:
        return "absent"
    if name == "mosquitto":
        return _first_line([name, "-h"]).replace("mosquitto version ", "")
    return _first_line([name, "--version"])


def header(extra: dict[str, str] | None = None) -> str:
    m = machine()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
             f"- machine: {m['cpu']}, {m['memory']} RAM, {m['os']}, Python {m['python']}; "
             f"load average at the end {load} (other work shares the cores)",
             f"- command: `{command_line()}`"]
    lines += [f"- {k}: {v}" for k, v in (extra or {}).items()]
    return "\n".join(lines)


def update_results(key: str, markdown: str, path: Path = RESULTS) -> None:
    """Replace this benchmark's section of RESULTS.md (between its markers) or append it."""
    start, end = f"<!-- bench:{key} -->", f"<!-- /bench:{key} -->"
    block = f"{start}\n{markdown.rstrip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else (
        "# Benchmark results\n\nEach benchmark rewrites its own section; see README.md for how "
        "to run them.\n")
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _m: block, text) if pattern.search(text) else (
        text.rstrip() + "\n\n" + block + "\n")
    path.write_text(text, encoding="utf-8")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (also readable on a terminal)."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
             for r in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class Finished:
    returncode: int
    seconds: float  # wall time from start to exit
    max_rss_mib: float  # peak resident set size of the child's own memory (VmHWM)
    cpu_seconds: float  # user + system


def vm_hwm_mib(pid: int) -> float | None:
    """The peak RSS of ``pid``'s own memory map (``VmHWM``), None once it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


class Child:
    """A child process: CPU time from ``wait4`` when it ends; peak RSS from its ``VmHWM``,
    sampled every 20 ms while it runs (``ru_maxrss`` of a child also holds the parent's
    high-water mark at the fork — Linux keeps it across exec — so a big bench process
    inflated every child's figure; it is the fallback only when no sample was taken)."""

    def __init__(self, args: list[str], *, env: dict[str, str] | None = None,
                 stdout: Path | None = None, stderr: Path | None = None) -> None:
        self.args = args
        self.started = time.monotonic()
        out = open(stdout, "wb") if stdout else subprocess.DEVNULL  # noqa: SIM115
        err = open(stderr, "wb") if stderr else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.proc = subprocess.Popen(args, env={**os.environ, **(env or {})},
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        finally:
            for fh in (out, err):
                if hasattr(fh, "close"):
                    fh.close()
        self.result: Finished | None = None
        self._hwm = 0.0
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        while self.proc.returncode is None:
            hwm = vm_hwm_mib(self.proc.pid)
            if hwm is None:
                return
            self._hwm = max(self._hwm, hwm)
            time.sleep(0.02)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def poll(self) -> Finished | None:
        if self.result is None:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                self.proc.returncode = os.waitstatus_to_exitcode(status)
                self.result = Finished(self.proc.returncode, time.monotonic() - self.started,
                                       self._hwm or usage.ru_maxrss / 1024,
                                       usage.ru_utime + usage.ru_stime)
        return self.result

    def wait(self, timeout: float) -> Finished:
        deadline = time.monotonic() + timeout
        while (result := self.poll()) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.args[:3]} still running after {timeout:g} s")
            time.sleep(0.02)
        return result

    def stop(self, timeout: float = 30.0) -> Finished:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                return self.wait(timeout)
            except TimeoutError:
                self.proc.kill()
                return self.wait(10)
        assert self.result is not None
        return self.result


@contextlib.contextmanager
def private_mosquitto(workdir: Path) -> Iterator[str]:
    """A Mosquitto of our own on a free loopback port (no persistence, deep queues)."""
    if shutil.which("mosquitto") is None:
        raise SystemExit("mosquitto is not installed (apt-get install mosquitto)")
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / f"mosquitto-{port}.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                      "max_queued_messages 1000000\nmax_inflight_messages 100\n"
                      f"log_dest file {workdir}/mosquitto-{port}.log\n")
    proc = subprocess.Popen(["mosquitto", "-c", str(config)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", port, 0.2):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"mosquitto did not start on port {port}")
            time.sleep(0.05)
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def rss_mib(pid: int) -> float:
    """Current resident set size of a process (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pids: list[int]) -> float:
    """CPU seconds (user + system) used so far by these running processes."""
    import psutil

    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total
