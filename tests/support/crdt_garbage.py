"""Garbage for the CRDT and sync-message decoders (hypothesis strategies): any value
msgpack carries, nested a little, keys included that the wire forms use; and a valid wire
form with one node, chosen by the data, replaced by garbage."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=4)
    | st.binary(max_size=4)
    | st.sampled_from(["a", "b", "p", "n", "e", "vv", "dc", "\ud800"])
)
garbage = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.tuples(inner, inner, inner)
        | st.dictionaries(scalars.filter(lambda k: k == k), inner, max_size=4)
    ),
    max_leaves=16,
)


def mutate(wire: Any, data: Any) -> Any:
    """Replace one node of a valid wire form (chosen by the data) with garbage."""
    if data.draw(st.integers(0, 3)) == 0 or not isinstance(wire, list | dict) or not wire:
        return data.draw(garbage)
    if isinstance(wire, list):
        i = data.draw(st.integers(0, len(wire) - 1))
        return [*wire[:i], mutate(wire[i], data), *wire[i + 1 :]]
    keys = sorted(wire)
    key = keys[data.draw(st.integers(0, len(keys) - 1))]
    if data.draw(st.booleans()):
        return {**wire, key: mutate(wire[key], data)}
    changed = dict(wire)
    changed[data.draw(scalars.filter(lambda k: k == k))] = changed.pop(key)
    return changed
