"""Rate-limited logging for events that can repeat thousands of times (refusals, rejections).

``ThrottledLog(logger, interval)``: the first event of a kind is logged at once; later ones
of the same kind within ``interval`` seconds are only counted, and the next line logged for
that kind says how many were suppressed. Counting never stops (``counts``).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable


class ThrottledLog:
    def __init__(self, logger: logging.Logger, interval: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self.counts: Counter[str] = Counter()  # every event, logged or not
        self._last: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()

    def log(self, level: int, kind: str, message: str, *args: object) -> bool:
        """Count one ``kind`` event; log it unless one was logged less than ``interval`` ago.
        Returns whether it was logged."""
        self.counts[kind] += 1
        now = self.clock()
        last = self._last.get(kind)
        if last is not None and now - last < self.interval:
            self._suppressed[kind] += 1
            return False
        self._last[kind] = now
        suppressed = self._suppressed.pop(kind, 0)
        if suppressed:
            message += " (%d more like this in the last %.0f s)"
            args = (*args, suppressed, now - last if last is not None else 0.0)
        self.logger.log(level, message, *args)
        return True

    def warning(self, kind: str, message: str, *args: object) -> bool:
        return self.log(logging.WARNING, kind, message, *args)
