"""Liveness from heartbeats: a phi-accrual failure detector (Hayashibara et al., 2004).

Instead of a fixed timeout, phi says how unlikely the current silence is given the
heartbeat intervals seen so far: phi = -log10(P(an interval at least this long)). A member
is suspect from `suspect_phi` and dead from `dead_phi`. Intervals are modelled as a normal
distribution (mean and standard deviation of a sliding window, as Akka and Cassandra do),
shifted by an acceptable pause so a short GC or a busy CPU does not kill a member.

Pure: every method takes `now` (seconds, monotonic); nothing here sleeps or reads a clock.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Liveness", "LivenessDetector", "PhiSettings", "phi"]


class Liveness(StrEnum):
    ALIVE = "alive"
    SUSPECT = "suspect"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class PhiSettings:
    """Thresholds and shape of the detector; intervals are in seconds."""

    suspect_phi: float = 3.0
    dead_phi: float = 8.0
    window: int = 100
    pause_intervals: float = 2.0  # acceptable pause, in heartbeat intervals
    min_std_ratio: float = 0.25  # floor of the standard deviation, as a share of the interval

    def __post_init__(self) -> None:
        if not 0 < self.suspect_phi < self.dead_phi:
            raise ValueError("need 0 < suspect_phi < dead_phi")
        if self.window < 2:
            raise ValueError("the window needs at least 2 intervals")
        if self.pause_intervals < 0 or self.min_std_ratio <= 0:
            raise ValueError("pause_intervals must be >= 0 and min_std_ratio > 0")


def phi(elapsed: float, mean: float, std: float) -> float:
    """-log10 of the probability that an interval lasts longer than `elapsed`.

    Uses the logistic approximation of the normal tail that Akka uses,
    P = 1 / (1 + exp(z)) with z = y (1.5976 + 0.070566 y^2), y = (elapsed - mean) / std,
    so phi = log10(1 + exp(z)), computed without overflow far into the tail.
    """
    y = (elapsed - mean) / std
    z = y * (1.5976 + 0.070566 * y * y)
    softplus = z + math.log1p(math.exp(-z)) if z > 0 else math.log1p(math.exp(z))
    return softplus / math.log(10)


class _History:
    """Recent heartbeat intervals of one member, with running sums for mean and variance."""

    __slots__ = ("interval", "intervals", "last", "sum", "sumsq")

    def __init__(self, interval: float, window: int, last: float) -> None:
        self.interval = interval
        self.intervals: deque[float] = deque(maxlen=window)
        self.sum = 0.0
        self.sumsq = 0.0
        self.last = last

    def add(self, value: float) -> None:
        if len(self.intervals) == self.intervals.maxlen:
            old = self.intervals[0]
            self.sum -= old
            self.sumsq -= old * old
        self.intervals.append(value)
        self.sum += value
        self.sumsq += value * value

    def stats(self, min_std: float) -> tuple[float, float]:
        n = len(self.intervals)
        if n == 0:  # bootstrap from the advertised interval, as Akka does
            return self.interval, max(min_std, self.interval / 4)
        mean = self.sum / n
        variance = max(0.0, self.sumsq / n - mean * mean)
        return mean, max(min_std, math.sqrt(variance))


class LivenessDetector:
    """Phi-accrual liveness of many members, each with its own heartbeat interval."""

    def __init__(self, interval: float = 1.0, settings: PhiSettings | None = None) -> None:
        if interval <= 0:
            raise ValueError("the heartbeat interval must be > 0")
        self.interval = interval
        self.settings = settings or PhiSettings()
        self._members: dict[str, _History] = {}

    def __contains__(self, member: object) -> bool:
        return member in self._members

    def __iter__(self) -> Iterator[str]:
        """The ids watched (a copy: forgetting while iterating is fine)."""
        return iter(list(self._members))

    def __len__(self) -> int:
        return len(self._members)

    def track(self, member: str, now: float, interval: float | None = None) -> None:
        """Start watching a member not heard from yet, as if it had beaten at `now`.

        A new observer then gives every known member one timeout before calling it dead,
        rather than declaring the whole cluster dead on its first look.
        """
        if member not in self._members:
            self._members[member] = _History(interval or self.interval, self.settings.window, now)

    def heartbeat(self, member: str, now: float, interval: float | None = None) -> None:
        """Record a heartbeat; `interval` is the member's advertised heartbeat period."""
        history = self._members.get(member)
        if history is None:
            self.track(member, now, interval)
            return
        if interval:
            history.interval = interval
        if now > history.last:
            history.add(now - history.last)
            history.last = now

    def forget(self, member: str) -> None:
        self._members.pop(member, None)

    def last_heartbeat(self, member: str) -> float | None:
        history = self._members.get(member)
        return None if history is None else history.last

    def phi(self, member: str, now: float) -> float:
        """How unlikely the current silence is; 0 for an unknown member."""
        history = self._members.get(member)
        if history is None:
            return 0.0
        mean, std = history.stats(self.settings.min_std_ratio * history.interval)
        pause = self.settings.pause_intervals * history.interval
        return phi(max(0.0, now - history.last), mean + pause, std)

    def state(self, member: str, now: float) -> Liveness:
        value = self.phi(member, now)
        if value >= self.settings.dead_phi:
            return Liveness.DEAD
        if value >= self.settings.suspect_phi:
            return Liveness.SUSPECT
        return Liveness.ALIVE
