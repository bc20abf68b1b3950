"""Wire forms: deterministic, round-tripping, and strict: garbage only ever raises
CrdtDecodeError, never a stray TypeError, KeyError or RecursionError."""

from __future__ import annotations

import contextlib
import math
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crdt import (
    CrdtDecodeError,
    CrdtValueError,
    Delta,
    GCounter,
    HybridClock,
    LWWMap,
    LWWRegister,
    ORSet,
    PNCounter,
    ReplicaState,
    Timestamp,
)
from crdt.base import Crdt
from crdt.wire import MAX_DEPTH, pack
from tests.support.crdt_garbage import garbage, mutate
from tests.support.crdt_sim import KINDS, Sim, scripts, skews


def decode_or_reject(kind: type[Crdt], wire: Any) -> None:
    """Either CrdtDecodeError, or a state whose own wire form is valid and stable."""
    try:
        state = kind.from_wire(wire)
    except CrdtDecodeError:
        return
    again = kind.from_wire(state.to_wire())
    assert pack(again.to_wire()) == pack(state.to_wire())
    state.value()


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.type_tag)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_round_trip_is_identity(kind: type[Crdt], data: Any) -> None:
    for state in Sim(kind, data.draw(skews)).run(data.draw(scripts(kind))).pool():
        wire = state.to_wire()
        decoded = kind.from_wire(wire)
        assert decoded.to_wire() == wire
        assert pack(decoded.to_wire()) == pack(wire)
        assert pack(decoded.value()) == pack(state.value())
        # a msgpack round trip (as on the bus) decodes to the same state
        assert kind.from_wire(msgpack.unpackb(pack(wire), raw=False)) == state


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.type_tag)
@settings(max_examples=200, deadline=None)
@given(wire=garbage)
def test_garbage_raises_only_decode_error(kind: type[Crdt], wire: Any) -> None:
    decode_or_reject(kind, wire)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.type_tag)
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_damaged_valid_wire_raises_only_decode_error(kind: type[Crdt], data: Any) -> None:
    pool = Sim(kind, data.draw(skews)).run(data.draw(scripts(kind, 15))).pool()
    decode_or_reject(kind, mutate(data.draw(st.sampled_from(pool)).to_wire(), data))


@settings(max_examples=200, deadline=None)
@given(wire=garbage)
def test_timestamp_delta_and_snapshot_garbage_raise_only_decode_error(wire: Any) -> None:
    for decode in (Timestamp.from_wire, Delta.from_wire):
        with contextlib.suppress(CrdtDecodeError):
            decode(wire)
    state = ReplicaState("r")
    try:
        state.restore(wire)
    except CrdtDecodeError:
        assert len(state) == 0


TS = [1, 0, "a"]
BAD_WIRES: list[tuple[type[Crdt], Any]] = [
    (GCounter, {"a": 0}),
    (GCounter, {"a": -1}),
    (GCounter, {"a": True}),
    (GCounter, {"a": 2**64}),
    (GCounter, {"": 1}),
    (GCounter, {"x" * 129: 1}),
    (GCounter, {1: 1}),
    (GCounter, [["a", 1]]),
    (PNCounter, {"p": {}}),
    (PNCounter, {"p": {}, "n": {}, "x": {}}),
    (LWWRegister, [TS]),
    (LWWRegister, [[1, 0], "v"]),
    (LWWRegister, [[-1, 0, "a"], "v"]),
    (LWWRegister, [[2**48, 0, "a"], "v"]),
    (LWWRegister, [[1, 2**32, "a"], "v"]),
    (LWWRegister, [[1.0, 0, "a"], "v"]),
    (LWWRegister, [TS, math.nan]),
    (LWWRegister, [TS, {1: "non-str key"}]),
    (LWWRegister, [TS, "\ud800"]),
    (LWWRegister, [TS, 2**64]),
    (LWWRegister, [TS, {1, 2}]),
    (LWWRegister, [TS, bytearray(b"x")]),
    (LWWMap, {"f": []}),
    (LWWMap, {"f": [TS, 1, 2]}),
    (LWWMap, {"f": TS}),
    (ORSet, {"e": [], "vv": {}}),
    (ORSet, {"e": [["x", []]], "vv": {"a": 1}, "dc": []}),
    (ORSet, {"e": [["x", [["a", 1]]]], "vv": {}, "dc": []}),  # dot not in context
    (ORSet, {"e": [["x", [["a", 1], ["a", 1]]]], "vv": {"a": 1}, "dc": []}),
    (ORSet, {"e": [["x", [["a", 1]]], ["y", [["a", 1]]]], "vv": {"a": 1}, "dc": []}),
    (ORSet, {"e": [["x", [["a", 1]]], ["x", [["a", 2]]]], "vv": {"a": 2}, "dc": []}),
    (ORSet, {"e": [], "vv": {"a": 0}, "dc": []}),
    (ORSet, {"e": [], "vv": {}, "dc": [["a", 0]]}),
    (ORSet, {"e": [], "vv": {}, "dc": [["a"]]}),
]


@pytest.mark.parametrize(("kind", "wire"), BAD_WIRES, ids=repr)
def test_specific_malformed_wires_are_rejected(kind: type[Crdt], wire: Any) -> None:
    with pytest.raises(CrdtDecodeError):
        kind.from_wire(wire)


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def test_depth_limit_applies_to_values_locally_and_on_the_wire() -> None:
    LWWRegister.from_wire([TS, nested(MAX_DEPTH)])
    with pytest.raises(CrdtDecodeError):
        LWWRegister.from_wire([TS, nested(MAX_DEPTH + 1)])
    with pytest.raises(CrdtDecodeError):
        LWWRegister.from_wire([TS, nested(100_000)])
    with pytest.raises(CrdtValueError):
        ORSet().add("a", nested(MAX_DEPTH + 1))


def test_values_are_normalized_so_wire_forms_are_canonical() -> None:
    ts = Timestamp(1, 0, "a")
    one, two = LWWRegister(), LWWRegister()
    one.assign({"b": (1, 2), "a": None}, ts)
    two.assign({"a": None, "b": [1, 2]}, ts)
    assert pack(one.to_wire()) == pack(two.to_wire())
    assert list(one.value()) == ["a", "b"]


def test_value_is_a_copy() -> None:
    reg = LWWRegister()
    source = [1, [2]]
    reg.assign(source, Timestamp(1, 0, "a"))
    source[1].append(3)  # the caller's list is not the state
    reg.value()[1].append(4)  # nor is the returned one
    assert reg.value() == [1, [2]]


def test_orset_elements_are_distinct_by_wire_type() -> None:
    s = ORSet()
    for item in (1, True, 1.0, "1", b"1"):
        s.add("a", item)
    assert len(s.value()) == 5


def test_wire_forms_have_the_documented_shapes() -> None:
    a = ReplicaState("a", HybridClock("a", wall=lambda: 1000))
    a.incr("g", 2)
    a.decr("p")
    a.set_register("r", "v")
    a.map_set("m", "f", 1)
    a.map_delete("m", "g")
    a.set_add("s", "x")
    a.set_add("s", "y")
    a.set_remove("s", "x")
    ts = 1000
    assert a.snapshot() == {
        "g": ["gcounter", {"a": 2}],
        "m": ["lwwmap", {"f": [[ts, 1, "a"], 1], "g": [[ts, 2, "a"]]}],
        "p": ["pncounter", {"n": {"a": 1}, "p": {}}],
        "r": ["lwwreg", [[ts, 0, "a"], "v"]],
        "s": ["orset", {"dc": [], "e": [["y", [["a", 2]]]], "vv": {"a": 2}}],
    }
