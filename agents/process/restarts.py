"""When to restart a crashed process (pure): exponential backoff and a restart budget.

A budget of `max_restarts` within `window` seconds stops a crash loop: past it the
supervisor gives up and says so. The delay before a restart doubles with each restart
still inside the window (netopt's Backoff ceiling), so a process that ran for a whole
window starts again from the base delay.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from netopt.retry import Backoff

__all__ = ["RestartDecision", "RestartPolicy", "RestartTracker"]

EXIT_USAGE = 2  # the agent's own exit code for bad configuration: restarting cannot help


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    max_restarts: int = 5
    window: float = 60.0
    base_delay: float = 0.5
    max_delay: float = 30.0

    def __post_init__(self) -> None:
        if self.max_restarts < 0 or self.window <= 0:
            raise ValueError("need max_restarts >= 0 and window > 0")
        if not 0 <= self.base_delay <= self.max_delay:
            raise ValueError("need 0 <= base_delay <= max_delay")


@dataclass(frozen=True, slots=True)
class RestartDecision:
    restart: bool
    delay: float
    reason: str
    attempt: int  # restarts inside the window, this one included


class RestartTracker:
    """Feed it each exit; it says whether and when to restart, and why."""

    def __init__(self, policy: RestartPolicy | None = None) -> None:
        self.policy = policy or RestartPolicy()
        self._backoff = Backoff(self.policy.base_delay, self.policy.max_delay, 0)
        self._restarts: deque[float] = deque()
        self.total_restarts = 0

    def on_exit(self, code: int, now: float) -> RestartDecision:
        """`code` is the exit status (negative: killed by that signal)."""
        policy = self.policy
        while self._restarts and now - self._restarts[0] > policy.window:
            self._restarts.popleft()
        recent = len(self._restarts)
        if code == 0:
            return RestartDecision(False, 0.0, "exited cleanly", recent)
        if code == EXIT_USAGE:
            return RestartDecision(False, 0.0, "bad configuration (exit 2)", recent)
        if recent >= policy.max_restarts:
            return RestartDecision(
                False,
                0.0,
                f"restart budget spent: {recent} restarts within {policy.window:g}s",
                recent,
            )
        self._restarts.append(now)
        self.total_restarts += 1
        return RestartDecision(True, self._backoff.ceiling(recent), "crashed", recent + 1)
