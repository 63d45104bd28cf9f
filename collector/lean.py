"""Keep the collector small: what a process needs for its event loop, and no more.

The outbox is the only user of worker threads (``asyncio.to_thread``: SQLite writes and
fsyncs), and its operations take one lock, so more than two threads only cost memory: each
thread is a stack and, under glibc, a malloc arena of its own (about 0.5 MiB resident
each). asyncio's default pool has ``min(32, cores + 4)`` of them.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

WORKER_THREADS = 2  # one writing the outbox, one for a name lookup meanwhile


def use_lean_executor(loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Give the running loop a default executor of ``WORKER_THREADS`` threads (once per
    loop: a second call keeps the pool it set)."""
    loop = loop or asyncio.get_running_loop()
    if isinstance(getattr(loop, "_default_executor", None), _LeanPool):
        return
    loop.set_default_executor(_LeanPool(max_workers=WORKER_THREADS,
                                        thread_name_prefix="otaudit-worker"))


class _LeanPool(ThreadPoolExecutor):
    """The collector's pool (a type of its own, so that it is recognised)."""
