"""Ingestor factories for store-worker tests (``otaudit.server.store_worker``): module-level,
so that a spawned worker can import them."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from otaudit.server.db import make_engine
from otaudit.server.ingest import CheckedBatch, Ingestor


def plain(database_url: str, prefix: str) -> Ingestor:
    return Ingestor(make_engine(database_url), topic_prefix=prefix, evaluate_inline=False)


class _Dying(Ingestor):
    """Kills its process when checking a batch: always, or once (``marker`` not there yet)."""

    marker: Path | None = None

    def check(self, messages: Sequence[tuple[str, bytes]]) -> CheckedBatch:
        if self.marker is None or not self.marker.exists():
            if self.marker is not None:
                self.marker.touch()
            os._exit(9)
        return super().check(messages)


def dying(database_url: str, prefix: str, marker: Path | None = None) -> Ingestor:
    """Dies on every batch (``marker`` None), or on the first batch of all its copies."""
    ingestor = _Dying(make_engine(database_url), topic_prefix=prefix, evaluate_inline=False)
    ingestor.marker = marker
    return ingestor


def broken(reason: str) -> Ingestor:
    raise RuntimeError(reason)
