"""Add-wins observed-remove set, optimized (Almeida, Shoker, Baquero: delta-state AWORSet).

Each add is tagged with a fresh dot; an element is present while some dot of its adds is
live. A remove only marks the element's live dots as seen in the causal context and keeps
nothing per element, yet an old state that still holds those dots cannot bring the
element back: on merge, a dot the other side has seen but no longer holds is dropped. A
concurrent add has a dot the remover has not seen, so it survives (add wins).
"""

from __future__ import annotations

from typing import Any, Self

from crdt.base import Crdt
from crdt.causal import CausalContext, Dot, dot_from_wire
from crdt.errors import CrdtDecodeError, CrdtValueError
from crdt.wire import as_array, as_map, copy_value, normalize, pack

__all__ = ["ORSet"]

_KEYS = frozenset({"dc", "e", "vv"})
_Entry = tuple[Any, set[Dot]]  # (element, its live dots), keyed by the element's bytes


class ORSet(Crdt):
    """Wire: `{"dc": [dot, ...], "e": [[element, [dot, ...]], ...], "vv": {replica: n}}`.

    A dot is `[replica, counter]`; elements are sorted by their canonical msgpack bytes and
    dots sorted, so equal states have equal wire forms.
    """

    __slots__ = ("_cc", "_entries")
    type_tag = "orset"

    def __init__(
        self, entries: dict[bytes, _Entry] | None = None, cc: CausalContext | None = None
    ) -> None:
        self._entries: dict[bytes, _Entry] = entries if entries is not None else {}
        self._cc = cc if cc is not None else CausalContext()

    def add(self, replica: str, element: Any) -> ORSet:
        """Add `element` with a fresh dot; the delta also retires the dots this add observed."""
        element = normalize(element, CrdtValueError)
        key = pack(element)
        dot = self._cc.next_dot(replica)
        old = self._entries.get(key)
        seen = {dot, *old[1]} if old is not None else {dot}
        self._entries[key] = (element, {dot})
        self._cc.add_all((dot,))
        return ORSet({key: (element, {dot})}, CausalContext(seen))

    def remove(self, element: Any) -> ORSet:
        """Remove `element`; the delta is its observed dots as seen context, no elements."""
        old = self._entries.pop(pack(normalize(element, CrdtValueError)), None)
        return ORSet(cc=CausalContext(old[1] if old is not None else ()))

    def __len__(self) -> int:
        """The number of elements present."""
        return len(self._entries)

    def value(self) -> list[Any]:
        """The elements, ordered by their canonical bytes."""
        return [copy_value(self._entries[key][0]) for key in sorted(self._entries)]

    def _join(self, other: Self) -> bool:
        entries, cc, other_cc = self._entries, self._cc, other._cc
        changed = False
        for key, (element, dots) in other._entries.items():
            mine = entries.get(key)
            if mine is None:
                keep = {dot for dot in dots if dot not in cc}
                if keep:
                    entries[key] = (element, keep)
                    changed = True
                continue
            keep = {dot for dot in mine[1] if dot in dots or dot not in other_cc}
            keep.update(dot for dot in dots if dot not in cc)
            if not keep:
                del entries[key]
                changed = True
            elif keep != mine[1]:
                entries[key] = (mine[0], keep)
        if not other_cc.is_empty():
            for key in [key for key in entries if key not in other._entries]:
                element, dots = entries[key]
                keep = {dot for dot in dots if dot not in other_cc}
                if not keep:
                    del entries[key]
                    changed = True
                elif len(keep) != len(dots):
                    entries[key] = (element, keep)
        cc.union(other_cc)
        return changed

    def to_wire(self) -> dict[str, Any]:
        wire = self._cc.to_wire()
        wire["e"] = [
            [self._entries[key][0], [[r, c] for r, c in sorted(self._entries[key][1])]]
            for key in sorted(self._entries)
        ]
        return dict(sorted(wire.items()))

    @classmethod
    def from_wire(cls, wire: Any) -> Self:
        fields = as_map(wire, "orset", _KEYS)
        cc = CausalContext.from_wire(fields["vv"], fields["dc"])
        entries: dict[bytes, _Entry] = {}
        seen: set[Dot] = set()
        for item in as_array(fields["e"], "orset entries"):
            element, dot_list = as_array(item, "orset entry", 2)
            element = normalize(element, CrdtDecodeError)
            dots = {dot_from_wire(dot) for dot in as_array(dot_list, "orset dots")}
            if not dots:
                raise CrdtDecodeError("an orset element must have at least one dot")
            if len(dots) != len(dot_list) or not seen.isdisjoint(dots):
                raise CrdtDecodeError("an orset dot must tag exactly one add")
            if not all(dot in cc for dot in dots):
                raise CrdtDecodeError("an orset dot is missing from its causal context")
            seen |= dots
            key = pack(element)
            if key in entries:
                raise CrdtDecodeError("an orset element is listed twice")
            entries[key] = (element, dots)
        return cls(entries, cc)

    def copy(self) -> Self:
        entries = {key: (element, set(dots)) for key, (element, dots) in self._entries.items()}
        return type(self)(entries, self._cc.copy())
