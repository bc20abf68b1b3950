"""A circuit breaker for one destination: stop calling a peer that keeps failing.

Closed: calls pass; `failure_threshold` consecutive failures open it. Open: calls are
refused for `open_seconds`. Half-open: up to `half_open_probes` calls pass as probes; that
many successes close it, any failure opens it again. Time is an explicit `now`.
The caller reports every call it was allowed exactly once (a timeout is a failure), else a
half-open breaker waits for its probes forever. Keep one per destination in a `PerKey`.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["BreakerState", "CircuitBreaker"]


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Closed, open and half-open states with consecutive-failure counting."""

    __slots__ = (
        "_failures",
        "_opened_at",
        "_probes",
        "_state",
        "_successes",
        "failure_threshold",
        "half_open_probes",
        "open_seconds",
    )

    def __init__(
        self, failure_threshold: int = 5, open_seconds: float = 5.0, half_open_probes: int = 1
    ) -> None:
        if failure_threshold < 1 or half_open_probes < 1:
            raise ValueError("failure_threshold and half_open_probes must be >= 1")
        if open_seconds < 0:
            raise ValueError(f"open_seconds must be >= 0, got {open_seconds}")
        self.failure_threshold = failure_threshold
        self.open_seconds = open_seconds
        self.half_open_probes = half_open_probes
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probes = 0
        self._successes = 0

    @property
    def state(self) -> BreakerState:
        """The state as of the last call; open turns half-open in the first `allow` after
        `open_seconds`."""
        return self._state

    def allow(self, now: float) -> bool:
        """Whether a call may go out now; in half-open, an allowed call is a probe."""
        if self._state is BreakerState.OPEN:
            if now < self._opened_at + self.open_seconds:
                return False
            self._state = BreakerState.HALF_OPEN
            self._probes = 0
            self._successes = 0
        if self._state is BreakerState.HALF_OPEN:
            if self._probes >= self.half_open_probes:
                return False
            self._probes += 1
        return True

    def on_success(self) -> None:
        """An allowed call succeeded."""
        if self._state is BreakerState.CLOSED:
            self._failures = 0
        elif self._state is BreakerState.HALF_OPEN:
            self._successes += 1
            if self._successes >= self.half_open_probes:
                self._state = BreakerState.CLOSED
                self._failures = 0

    def on_failure(self, now: float) -> None:
        """An allowed call failed (error or timeout)."""
        if self._state is BreakerState.CLOSED:
            self._failures += 1
            if self._failures >= self.failure_threshold:
                self._open(now)
        elif self._state is BreakerState.HALF_OPEN:
            self._open(now)

    def _open(self, now: float) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = now
