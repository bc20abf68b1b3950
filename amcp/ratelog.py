"""Rate-limited logging: an attacker flooding bad frames must not flood the logs too."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["RateLimitedLog"]


class RateLimitedLog:
    """Logs at most one line per key every `interval` seconds, saying how many were folded."""

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def log(self, level: int, key: str, msg: str, *args: object, exc_info: bool = False) -> bool:
        """Log now if this key's interval has passed; return whether a line was written."""
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        if len(self._last) > 1024:  # keys are reasons and subjects: keep the map bounded
            self._last.clear()
            self._suppressed.clear()
        self._last[key] = now
        folded = self._suppressed.pop(key, 0)
        if folded:
            msg += " (%d similar suppressed)"
            args = (*args, folded)
        self.logger.log(level, msg, *args, exc_info=exc_info)
        return True
