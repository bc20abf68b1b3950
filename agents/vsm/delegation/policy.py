"""What a delegated subtask does when an attempt fails. Pure.

- retry: run it again after an exponential backoff, up to `retries` more times; then skip;
- skip: give up at once and note the limitation;
- alternative: run the subtask's alternative once (if it has one); if that fails too, or
  there is none, skip.

A skipped subtask degrades the task: the synthesis goes on without it and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Backoff", "FailurePolicy", "Next", "next_move"]


class FailurePolicy(StrEnum):
    RETRY = "retry"
    SKIP = "skip"
    ALTERNATIVE = "alternative"


class Next(StrEnum):
    RETRY = "retry"
    ALTERNATIVE = "alternative"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before retry n (1-based): base * factor**(n-1), at most cap seconds."""

    retries: int = 2
    base: float = 0.2
    factor: float = 2.0
    cap: float = 5.0

    def __post_init__(self) -> None:
        if self.retries < 0 or self.base < 0 or self.factor < 1 or self.cap < 0:
            raise ValueError("backoff: retries, base, cap >= 0 and factor >= 1")

    def delay(self, retry: int) -> float:
        return min(self.cap, self.base * self.factor ** max(0, retry - 1))


def next_move(
    policy: FailurePolicy,
    *,
    failures: int,
    retries: int,
    has_alternative: bool,
    on_alternative: bool,
) -> Next:
    """What follows the `failures`-th failed attempt of the primary subtask (or of its
    alternative, `on_alternative`)."""
    if on_alternative:
        return Next.SKIP
    if policy is FailurePolicy.RETRY and failures <= retries:
        return Next.RETRY
    if policy is FailurePolicy.ALTERNATIVE and has_alternative:
        return Next.ALTERNATIVE
    return Next.SKIP
