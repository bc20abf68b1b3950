"""The contract every CRDT type here keeps: a join-semilattice with delta mutators.

`merge` is commutative, associative and idempotent, so replicas may exchange deltas or
full states in any order, with duplicates, and still converge. Mutators (on each type)
update the state and return a delta: a small state of the same type whose merge into any
replica has the mutation's effect.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Self

from crdt.errors import CrdtTypeMismatch
from crdt.hlc import Timestamp
from crdt.wire import pack

__all__ = ["Crdt"]


class Crdt(ABC):
    """Base of the CRDT types; `type_tag` names the type on the wire."""

    __slots__ = ()
    type_tag: ClassVar[str]

    def merge(self, other: Self) -> bool:
        """Join `other` into this state in place; True when `value()` changed."""
        if type(other) is not type(self):
            raise CrdtTypeMismatch(f"cannot merge {other.type_tag} into {self.type_tag}")
        return self._join(other)

    def merged(self, other: Self) -> Self:
        """The join of this state and `other`, leaving both untouched."""
        result = self.copy()
        result.merge(other)
        return result

    def latest(self) -> Timestamp | None:
        """The greatest HLC timestamp in this state, or None if the type carries none."""
        return None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Crdt) or type(other) is not type(self):
            return NotImplemented
        return pack(self.to_wire()) == pack(other.to_wire())

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_wire()!r})"

    @abstractmethod
    def _join(self, other: Self) -> bool: ...

    @abstractmethod
    def value(self) -> Any:
        """The plain value (a copy the caller may mutate)."""

    @abstractmethod
    def to_wire(self) -> Any:
        """A deterministic msgpack-able form: equal states give equal values and bytes."""

    @classmethod
    @abstractmethod
    def from_wire(cls, wire: Any) -> Self:
        """Decode and check a wire form; raises CrdtDecodeError and nothing else."""

    @abstractmethod
    def copy(self) -> Self:
        """An independent copy of this state."""
