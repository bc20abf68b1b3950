"""Last-writer-wins map: str fields to LWW writes; a delete is a write of a tombstone.

A tombstone is one timestamp per deleted field, overwritten by any later write of that
field, so the state is bounded by the number of distinct fields ever used.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Self

from crdt.base import Crdt
from crdt.errors import CrdtDecodeError, CrdtValueError
from crdt.hlc import Timestamp
from crdt.lwwregister import supersedes
from crdt.wire import as_array, as_map, as_name, copy_value, normalize, pack

__all__ = ["LWWMap"]


class _Write(NamedTuple):
    ts: Timestamp
    live: bool
    value: Any  # None for a tombstone

    def payload(self) -> list[Any]:
        return [self.value] if self.live else []


class LWWMap(Crdt):
    """Wire: `{field: [timestamp, value] | [timestamp]}` (one item: deleted), keys sorted."""

    __slots__ = ("_fields",)
    type_tag = "lwwmap"

    def __init__(self, fields: dict[str, _Write] | None = None) -> None:
        self._fields: dict[str, _Write] = dict(fields) if fields else {}

    def set(self, field: str, value: Any, ts: Timestamp) -> LWWMap:
        """Write `field` = `value` at `ts`; the delta is that one write."""
        write = _Write(ts, True, normalize(value, CrdtValueError))
        return self._local(as_name(field, "field", CrdtValueError), write)

    def delete(self, field: str, ts: Timestamp) -> LWWMap:
        """Write a tombstone for `field` at `ts`; the delta is that one tombstone."""
        return self._local(as_name(field, "field", CrdtValueError), _Write(ts, False, None))

    def _local(self, field: str, write: _Write) -> LWWMap:
        delta = LWWMap({field: write})
        self._join(delta)
        return delta

    def get(self, field: str, default: Any = None) -> Any:
        """The value of `field`, or `default` when it was never set or is deleted."""
        write = self._fields.get(field)
        return copy_value(write.value) if write is not None and write.live else default

    def latest(self) -> Timestamp | None:
        return max((write.ts for write in self._fields.values()), default=None)

    def value(self) -> dict[str, Any]:
        return {
            field: copy_value(write.value)
            for field, write in sorted(self._fields.items())
            if write.live
        }

    def _join(self, other: Self) -> bool:
        fields = self._fields
        changed = False
        for field, write in other._fields.items():
            current = fields.get(field)
            if current is None:
                fields[field] = write
                changed = changed or write.live
            elif supersedes(write.ts, write.payload(), current.ts, current.payload()):
                fields[field] = write
                changed = changed or (
                    write.live != current.live
                    or (write.live and pack(write.value) != pack(current.value))
                )
        return changed

    def to_wire(self) -> dict[str, list[Any]]:
        return {
            field: [write.ts.to_wire(), *write.payload()]
            for field, write in sorted(self._fields.items())
        }

    @classmethod
    def from_wire(cls, wire: Any) -> Self:
        fields = {}
        for field, entry in as_map(wire, "lwwmap").items():
            items = as_array(entry, "lwwmap entry")
            if len(items) == 1:
                write = _Write(Timestamp.from_wire(items[0]), False, None)
            elif len(items) == 2:
                value = normalize(items[1], CrdtDecodeError)
                write = _Write(Timestamp.from_wire(items[0]), True, value)
            else:
                raise CrdtDecodeError("lwwmap entry must be [timestamp] or [timestamp, value]")
            fields[as_name(field, "lwwmap field")] = write
        return cls(fields)

    def copy(self) -> Self:
        return type(self)(self._fields)
