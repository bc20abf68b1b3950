"""Retry delays: capped exponential backoff with full jitter.

Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter", 2015): the delay before
retry n is uniform in [0, min(cap, base * 2**n)]. Spreading retries over the whole interval
stops clients that failed together from retrying together.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["Backoff"]

_DEFAULT_RNG = random.Random()
_MAX_EXPONENT = 64  # 2**64 times any sane base is past any cap


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to wait before each of up to `max_retries` retries."""

    base_seconds: float = 0.05
    cap_seconds: float = 2.0
    max_retries: int = 3

    def __post_init__(self) -> None:
        if not 0 <= self.base_seconds <= self.cap_seconds:
            raise ValueError("need 0 <= base_seconds <= cap_seconds")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")

    def ceiling(self, retry: int) -> float:
        """The upper bound of the delay before retry number `retry` (0-based)."""
        return min(self.cap_seconds, self.base_seconds * 2.0 ** min(retry, _MAX_EXPONENT))

    def delay(self, retry: int, rng: random.Random = _DEFAULT_RNG) -> float:
        """A delay drawn uniformly from [0, ceiling(retry)]."""
        return rng.uniform(0.0, self.ceiling(retry))

    def schedule(self, rng: random.Random = _DEFAULT_RNG) -> list[float]:
        """The delays before each retry, `max_retries` of them."""
        return [self.delay(n, rng) for n in range(self.max_retries)]
