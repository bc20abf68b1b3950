"""Positive-negative counter: two grow-only counters, increments minus decrements."""

from __future__ import annotations

from typing import Any, Self

from crdt.base import Crdt
from crdt.gcounter import GCounter
from crdt.wire import as_map

__all__ = ["PNCounter"]

_KEYS = frozenset({"p", "n"})


class PNCounter(Crdt):
    """Wire: `{"n": gcounter, "p": gcounter}`."""

    __slots__ = ("_n", "_p")
    type_tag = "pncounter"

    def __init__(self, p: GCounter | None = None, n: GCounter | None = None) -> None:
        self._p = p if p is not None else GCounter()
        self._n = n if n is not None else GCounter()

    def increment(self, replica: str, n: int = 1) -> PNCounter:
        """Add `n` > 0; the delta carries only the new increment entry of `replica`."""
        return PNCounter(p=self._p.increment(replica, n))

    def decrement(self, replica: str, n: int = 1) -> PNCounter:
        """Subtract `n` > 0; the delta carries only the new decrement entry of `replica`."""
        return PNCounter(n=self._n.increment(replica, n))

    def value(self) -> int:
        return self._p.value() - self._n.value()

    def _join(self, other: Self) -> bool:
        before = self.value()
        self._p.merge(other._p)
        self._n.merge(other._n)
        return self.value() != before

    def to_wire(self) -> dict[str, Any]:
        return {"n": self._n.to_wire(), "p": self._p.to_wire()}

    @classmethod
    def from_wire(cls, wire: Any) -> Self:
        parts = as_map(wire, "pncounter", _KEYS)
        return cls(GCounter.from_wire(parts["p"]), GCounter.from_wire(parts["n"]))

    def copy(self) -> Self:
        return type(self)(self._p.copy(), self._n.copy())
