"""Grow-only counter: one monotonic entry per replica; the value is their sum."""

from __future__ import annotations

from typing import Any, Self

from crdt.base import Crdt
from crdt.errors import CrdtValueError
from crdt.wire import MAX_COUNT, as_count, as_map, as_name

__all__ = ["GCounter", "check_amount"]


def check_amount(n: Any) -> int:
    """An increment must be a positive int: a zero or negative one would break monotony."""
    if type(n) is not int or n <= 0:
        raise CrdtValueError(f"amount must be a positive integer, not {n!r}")
    return n


class GCounter(Crdt):
    """Wire: `{replica: count}` with counts >= 1, keys sorted."""

    __slots__ = ("_counts",)
    type_tag = "gcounter"

    def __init__(self, counts: dict[str, int] | None = None) -> None:
        self._counts: dict[str, int] = dict(counts) if counts else {}

    def increment(self, replica: str, n: int = 1) -> GCounter:
        """Add `n` > 0 to `replica`'s entry; the delta is that one entry."""
        count = self._counts.get(replica, 0) + check_amount(n)
        if count > MAX_COUNT:
            raise CrdtValueError("counter entry would exceed 2**64-1")
        self._counts[replica] = count
        delta = GCounter()
        delta._counts[replica] = count
        return delta

    def value(self) -> int:
        return sum(self._counts.values())

    def _join(self, other: Self) -> bool:
        counts = self._counts
        changed = False
        for replica, count in other._counts.items():
            if count > counts.get(replica, 0):
                counts[replica] = count
                changed = True
        return changed

    def to_wire(self) -> dict[str, int]:
        return dict(sorted(self._counts.items()))

    @classmethod
    def from_wire(cls, wire: Any) -> Self:
        counts = {
            as_name(replica, "gcounter replica"): as_count(count, "gcounter entry")
            for replica, count in as_map(wire, "gcounter").items()
        }
        return cls(counts)

    def copy(self) -> Self:
        return type(self)(self._counts)
