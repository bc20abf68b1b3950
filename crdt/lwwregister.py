"""Last-writer-wins register: the write with the greatest HLC timestamp holds the value.

A write may carry a time to live (`ttl_ms`): it then expires at its own timestamp's wall
time plus the ttl. Merged writes keep the winner's value and the latest expiry of them all
(none if one does not expire), so the key expires on every replica alike once every write
it ever had is dead, which is what lets replicas drop it without a tombstone (see
ReplicaState and docs/CRDT.md, "Expiring registers").
"""

from __future__ import annotations

from typing import Any, Self

from crdt.base import Crdt
from crdt.errors import CrdtDecodeError, CrdtValueError
from crdt.hlc import Timestamp
from crdt.wire import as_array, copy_value, normalize, pack

__all__ = ["MAX_TTL_MS", "LWWRegister", "supersedes"]

MAX_TTL_MS = 2**40  # about 35 years: a ttl is a retention horizon, not a date


def supersedes(ts: Timestamp, wire: Any, current_ts: Timestamp, current_wire: Any) -> bool:
    """True when the write (ts, wire) beats the current one.

    Timestamps carry the replica id, so two distinct writes never tie; should a buggy peer
    reuse a timestamp, the canonical bytes decide, which keeps merge commutative anyway.
    """
    if ts != current_ts:
        return ts > current_ts
    return pack(wire) > pack(current_wire)


def _check_ttl(ttl_ms: Any, error: type[Exception]) -> int | None:
    if ttl_ms is None:
        return None
    if type(ttl_ms) is not int or not 1 <= ttl_ms <= MAX_TTL_MS:
        raise error(f"ttl must be an integer number of ms in [1, {MAX_TTL_MS}]")
    return ttl_ms


class LWWRegister(Crdt):
    """Wire: `None` (never written), `[timestamp, value]`, or `[timestamp, value, ttl_ms]`
    for a write that expires."""

    __slots__ = ("_ts", "_ttl", "_value")
    type_tag = "lwwreg"

    def __init__(
        self, ts: Timestamp | None = None, value: Any = None, ttl_ms: int | None = None
    ) -> None:
        self._ts = ts
        self._value = value
        self._ttl = ttl_ms

    def assign(self, value: Any, ts: Timestamp, ttl_ms: int | None = None) -> LWWRegister:
        """Write `value` at `ts` (from the replica's clock), expiring `ttl_ms` after `ts`
        if given; the delta is the write itself."""
        delta = LWWRegister(
            ts, normalize(value, CrdtValueError), _check_ttl(ttl_ms, CrdtValueError)
        )
        self._join(delta)
        return delta

    @property
    def timestamp(self) -> Timestamp | None:
        """The timestamp of the winning write, None if never written."""
        return self._ts

    @property
    def expires_ms(self) -> int | None:
        """When the key expires (wall ms): the latest expiry of the writes merged into it,
        None if one of them does not expire."""
        if self._ts is None or self._ttl is None:
            return None
        return self._ts.wall_ms + self._ttl

    def latest(self) -> Timestamp | None:
        return self._ts

    def value(self) -> Any:
        return copy_value(self._value)

    def _join(self, other: Self) -> bool:
        if other._ts is None:
            return False
        if self._ts is None:
            self._ts, self._value, self._ttl = other._ts, other._value, other._ttl
            return pack(other._value) != pack(None)  # unwritten reads as None
        # The key lives as long as the longest-lived write it has seen (never, if one does
        # not expire): dropping it then leaves no live write behind that could bring it back.
        mine, theirs = self.expires_ms, other.expires_ms
        expiry = None if mine is None or theirs is None else max(mine, theirs)
        changed = False
        if supersedes(other._ts, other._written(), self._ts, self._written()):
            changed = pack(other._value) != pack(self._value)
            self._ts, self._value = other._ts, other._value
        self._ttl = None if expiry is None else expiry - self._ts.wall_ms
        return changed

    def _written(self) -> Any:
        """What a timestamp tie compares: the value, and the ttl when there is one."""
        return self._value if self._ttl is None else [self._value, self._ttl]

    def to_wire(self) -> list[Any] | None:
        if self._ts is None:
            return None
        if self._ttl is None:
            return [self._ts.to_wire(), self._value]
        return [self._ts.to_wire(), self._value, self._ttl]

    @classmethod
    def from_wire(cls, wire: Any) -> Self:
        if wire is None:
            return cls()
        items = as_array(wire, "lwwreg")
        if len(items) not in (2, 3):
            raise CrdtDecodeError("lwwreg must have 2 or 3 items")
        ttl = _check_ttl(items[2], CrdtDecodeError) if len(items) == 3 else None
        return cls(Timestamp.from_wire(items[0]), normalize(items[1], CrdtDecodeError), ttl)

    def copy(self) -> Self:
        return type(self)(self._ts, self._value, self._ttl)
