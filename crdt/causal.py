"""Causal context of an optimized OR-set: which dots (replica, counter) have been seen.

Held as a version vector (every counter up to n seen, per replica) plus a dot cloud (seen
dots beyond a gap). It is kept compacted: a cloud dot right after its replica's vector
entry moves into the vector. The compacted form is unique for a given set of seen dots,
so equal knowledge gives equal wire forms, and once deltas stop going missing (or
anti-entropy has filled the gaps) the context shrinks to one entry per replica.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from crdt.errors import CrdtValueError
from crdt.wire import MAX_COUNT, as_array, as_count, as_map, as_name

__all__ = ["CausalContext", "Dot", "dot_from_wire"]

Dot = tuple[str, int]


def dot_from_wire(wire: Any) -> Dot:
    """Decode `[replica, counter]`."""
    replica, counter = as_array(wire, "dot", 2)
    return as_name(replica, "dot replica"), as_count(counter, "dot counter")


class CausalContext:
    """Wire: `{"dc": [[replica, counter], ...] sorted, "vv": {replica: counter} sorted}`."""

    __slots__ = ("_cloud", "_vv")

    def __init__(self, dots: Iterable[Dot] = ()) -> None:
        self._vv: dict[str, int] = {}
        self._cloud: set[Dot] = set()
        self.add_all(dots)

    def __contains__(self, dot: Dot) -> bool:
        replica, counter = dot
        return counter <= self._vv.get(replica, 0) or dot in self._cloud

    def is_empty(self) -> bool:
        return not self._vv and not self._cloud

    def next_dot(self, replica: str) -> Dot:
        """A dot of `replica` greater than any seen: the identity of its next add."""
        counter = max((c for r, c in self._cloud if r == replica), default=self._vv.get(replica, 0))
        if counter >= MAX_COUNT:
            raise CrdtValueError(f"dot counter of {replica!r} exhausted")
        return replica, counter + 1

    def add_all(self, dots: Iterable[Dot]) -> None:
        """Record `dots` as seen, then compact."""
        vv, cloud = self._vv, self._cloud
        touched = set()
        for dot in dots:
            replica, counter = dot
            if counter == vv.get(replica, 0) + 1:
                vv[replica] = counter
                touched.add(replica)
            elif counter > vv.get(replica, 0):
                cloud.add(dot)
                touched.add(replica)
        self._compact(touched)

    def union(self, other: CausalContext) -> None:
        """Everything seen by either context, compacted."""
        vv = self._vv
        for replica, counter in other._vv.items():
            if counter > vv.get(replica, 0):
                vv[replica] = counter
        self._cloud |= other._cloud
        self._compact(set(other._vv) | {replica for replica, _ in other._cloud})

    def _compact(self, replicas: set[str]) -> None:
        if not self._cloud:
            return
        vv, cloud = self._vv, self._cloud
        for replica in replicas:
            counter = vv.get(replica, 0)
            while (replica, counter + 1) in cloud:
                counter += 1
                cloud.discard((replica, counter))
            if counter:
                vv[replica] = counter
        self._cloud = {(r, c) for r, c in cloud if c > vv.get(r, 0)}

    def copy(self) -> CausalContext:
        result = CausalContext()
        result._vv = dict(self._vv)
        result._cloud = set(self._cloud)
        return result

    def to_wire(self) -> dict[str, Any]:
        return {
            "dc": [[replica, counter] for replica, counter in sorted(self._cloud)],
            "vv": dict(sorted(self._vv.items())),
        }

    @classmethod
    def from_wire(cls, vv: Any, cloud: Any) -> CausalContext:
        """Decode the "vv" map and the "dc" array of an OR-set wire form."""
        result = cls()
        result._vv = {
            as_name(replica, "vv replica"): as_count(counter, "vv counter")
            for replica, counter in as_map(vv, "vv").items()
        }
        result.add_all([dot_from_wire(dot) for dot in as_array(cloud, "dc")])
        return result
