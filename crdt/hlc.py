"""Hybrid logical clock (Kulkarni et al., 2014): timestamps that follow causality and stay
close to wall time, totally ordered by (wall ms, logical counter, replica id).

The replica id as the final tie-break makes concurrent LWW writes resolve the same way on
every replica, however skewed their wall clocks are. A remote timestamp more than
`max_offset_ms` ahead of local wall time is refused, so one bad peer cannot drag every
clock (and every later write) into the future.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crdt.errors import ClockDriftError, CrdtDecodeError, CrdtValueError
from crdt.wire import as_array, as_name

__all__ = ["MAX_LOGICAL", "MAX_WALL_MS", "HybridClock", "Timestamp", "epoch_ms"]

MAX_WALL_MS = (1 << 48) - 1  # year 10889: anything larger is garbage
MAX_LOGICAL = (1 << 32) - 1  # on overflow the clock borrows one millisecond instead


@dataclass(frozen=True, order=True, slots=True)
class Timestamp:
    """One HLC reading; ordering is lexicographic over the three fields."""

    wall_ms: int
    logical: int
    replica: str

    def to_wire(self) -> list[Any]:
        """`[wall_ms, logical, replica]`."""
        return [self.wall_ms, self.logical, self.replica]

    @classmethod
    def from_wire(cls, wire: Any) -> Timestamp:
        """Decode `[wall_ms, logical, replica]`; raises CrdtDecodeError only."""
        wall_ms, logical, replica = as_array(wire, "timestamp", 3)
        if type(wall_ms) is not int or not 0 <= wall_ms <= MAX_WALL_MS:
            raise CrdtDecodeError("timestamp wall_ms must be an integer in [0, 2**48)")
        if type(logical) is not int or not 0 <= logical <= MAX_LOGICAL:
            raise CrdtDecodeError("timestamp logical must be an integer in [0, 2**32)")
        return cls(wall_ms, logical, as_name(replica, "timestamp replica"))


def epoch_ms() -> int:
    """Wall-clock milliseconds since the Unix epoch: the one clock for crdt and consensus."""
    return time.time_ns() // 1_000_000


class HybridClock:
    """The HLC of one replica. `wall` returns milliseconds since the epoch (inject in tests)."""

    __slots__ = ("_logical", "_wall", "max_offset_ms", "replica_id", "wall")

    def __init__(
        self,
        replica_id: str,
        wall: Callable[[], int] = epoch_ms,
        max_offset_ms: int = 60_000,
    ) -> None:
        self.replica_id = as_name(replica_id, "replica id", CrdtValueError)
        if type(max_offset_ms) is not int or max_offset_ms < 0:
            raise CrdtValueError("max_offset_ms must be a non-negative integer")
        self.wall = wall
        self.max_offset_ms = max_offset_ms
        self._wall = 0
        self._logical = 0

    @property
    def last(self) -> Timestamp:
        """The latest timestamp issued or observed (wall 0 before the first event)."""
        return Timestamp(self._wall, self._logical, self.replica_id)

    def _set(self, wall_ms: int, logical: int) -> Timestamp:
        if logical > MAX_LOGICAL:
            wall_ms, logical = wall_ms + 1, 0
        self._wall, self._logical = wall_ms, logical
        return Timestamp(wall_ms, logical, self.replica_id)

    def now(self) -> Timestamp:
        """A timestamp for a local event, greater than every one issued or observed so far."""
        physical = self.wall()
        if physical > self._wall:
            return self._set(physical, 0)
        return self._set(self._wall, self._logical + 1)

    def observe(self, remote: Timestamp) -> Timestamp:
        """Merge a received timestamp; raises ClockDriftError (clock unchanged) if too far ahead."""
        physical = self.wall()
        if remote.wall_ms > physical + self.max_offset_ms:
            raise ClockDriftError(
                f"timestamp from {remote.replica!r} is {remote.wall_ms - physical} ms ahead "
                f"of local time (max offset {self.max_offset_ms} ms)"
            )
        wall_ms = max(self._wall, remote.wall_ms, physical)
        if wall_ms == self._wall == remote.wall_ms:
            logical = max(self._logical, remote.logical) + 1
        elif wall_ms == self._wall:
            logical = self._logical + 1
        elif wall_ms == remote.wall_ms:
            logical = remote.logical + 1
        else:
            logical = 0
        return self._set(wall_ms, logical)

    def advance(self, past: Timestamp) -> None:
        """Never issue a timestamp at or below `past`: trusted history (own log on restart)."""
        if (past.wall_ms, past.logical) > (self._wall, self._logical):
            self._wall, self._logical = past.wall_ms, past.logical
