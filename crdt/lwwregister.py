"""Last-writer-wins register: the write with the greatest HLC timestamp holds the value."""

from __future__ import annotations

from typing import Any, Self

from crdt.base import Crdt
from crdt.errors import CrdtDecodeError, CrdtValueError
from crdt.hlc import Timestamp
from crdt.wire import as_array, copy_value, normalize, pack

__all__ = ["LWWRegister", "supersedes"]


def supersedes(ts: Timestamp, wire: Any, current_ts: Timestamp, current_wire: Any) -> bool:
    """True when the write (ts, wire) beats the current one.

    Timestamps carry the replica id, so two distinct writes never tie; should a buggy peer
    reuse a timestamp, the canonical bytes decide, which keeps merge commutative anyway.
    """
    if ts != current_ts:
        return ts > current_ts
    return pack(wire) > pack(current_wire)


class LWWRegister(Crdt):
    """Wire: `None` (never written) or `[timestamp, value]`."""

    __slots__ = ("_ts", "_value")
    type_tag = "lwwreg"

    def __init__(self, ts: Timestamp | None = None, value: Any = None) -> None:
        self._ts = ts
        self._value = value

    def assign(self, value: Any, ts: Timestamp) -> LWWRegister:
        """Write `value` at `ts` (from the replica's clock); the delta is the write itself."""
        delta = LWWRegister(ts, normalize(value, CrdtValueError))
        self._join(delta)
        return delta

    @property
    def timestamp(self) -> Timestamp | None:
        """The timestamp of the winning write, None if never written."""
        return self._ts

    def latest(self) -> Timestamp | None:
        return self._ts

    def value(self) -> Any:
        return copy_value(self._value)

    def _join(self, other: Self) -> bool:
        if other._ts is None:
            return False
        if self._ts is not None and not supersedes(other._ts, other._value, self._ts, self._value):
            return False
        changed = pack(other._value) != pack(self._value)  # unwritten reads as None
        self._ts, self._value = other._ts, other._value
        return changed

    def to_wire(self) -> list[Any] | None:
        if self._ts is None:
            return None
        return [self._ts.to_wire(), self._value]

    @classmethod
    def from_wire(cls, wire: Any) -> Self:
        if wire is None:
            return cls()
        ts, value = as_array(wire, "lwwreg", 2)
        return cls(Timestamp.from_wire(ts), normalize(value, CrdtDecodeError))

    def copy(self) -> Self:
        return type(self)(self._ts, self._value)
