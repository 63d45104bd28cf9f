"""The collector caps glibc's malloc arenas (``limit_malloc_arenas``): worker threads that
allocate (the WinRM probe's HTTP/TLS work) share two arenas instead of one each."""

from __future__ import annotations

import ctypes
import subprocess
import sys

import pytest

from otaudit.collector.run import MALLOC_ARENAS, limit_malloc_arenas


def _glibc() -> bool:
    try:
        return hasattr(ctypes.CDLL(None), "malloc_stats")
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not _glibc(), reason="glibc's malloc arenas only")

PROGRAM = """
import ctypes, sys, threading
from otaudit.collector.run import limit_malloc_arenas
if sys.argv[1] == "limit":
    assert limit_malloc_arenas()
barrier = threading.Barrier(8)
def work():
    barrier.wait()  # all eight allocate at once
    kept = [bytearray(4096 + i) for i in range(2000)]
    del kept
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
ctypes.CDLL(None).malloc_stats()  # one "Arena N:" block per arena, on stderr
"""


def _arenas(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", PROGRAM, mode], capture_output=True,
                          text=True, timeout=60, check=True)
    return sum(line.startswith("Arena ") for line in done.stderr.splitlines())


def test_threads_share_the_capped_arenas() -> None:
    assert 1 <= _arenas("limit") <= MALLOC_ARENAS
    assert _arenas("free") > MALLOC_ARENAS  # without the cap, a thread gets one each


def test_the_cap_is_reported_as_set() -> None:
    assert limit_malloc_arenas() is True
