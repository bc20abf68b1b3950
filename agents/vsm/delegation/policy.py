"""What a delegated subtask does when an attempt fails. Pure.

- retry: run it again after a backoff (netopt.retry.Backoff: capped exponential, full
  jitter), up to `retries` more times; then skip;
- skip: give up at once and note the limitation;
- alternative: run the subtask's alternative once (if it has one); if that fails too, or
  there is none, skip.

A skipped subtask degrades the task: the synthesis goes on without it and says so.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["FailurePolicy", "Next", "next_move"]


class FailurePolicy(StrEnum):
    RETRY = "retry"
    SKIP = "skip"
    ALTERNATIVE = "alternative"


class Next(StrEnum):
    RETRY = "retry"
    ALTERNATIVE = "alternative"
    SKIP = "skip"


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
