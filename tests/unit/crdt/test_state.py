"""ReplicaState: deltas out, checked deltas in, digests, snapshots; a refused delta leaves
the state exactly as it was."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crdt import (
    ClockDriftError,
    CrdtDecodeError,
    CrdtTypeMismatch,
    CrdtValueError,
    Delta,
    HybridClock,
    ReplicaState,
    Timestamp,
)
from crdt.wire import pack
from tests.support.crdt_garbage import garbage
from tests.support.factories import NOW_MS, replica

NOW = NOW_MS  # the replicas' wall clock


def populated() -> ReplicaState:
    state = replica("a")
    state.incr("g", 3)
    state.decr("p", 2)
    state.set_register("r", {"k": [1, 2]})
    state.map_set("m", "f", "v")
    state.map_delete("m", "gone")
    state.set_add("s", "x")
    state.set_add("s", 7)
    state.set_remove("s", "x")
    return state


def frozen(state: ReplicaState) -> bytes:
    return pack(state.snapshot())


def test_every_mutation_delta_reproduces_the_value_on_a_peer() -> None:
    a, b = replica("a"), replica("b")
    deltas = [
        a.incr("g", 3),
        a.decr("p", 2),
        a.incr("p", 5),
        a.set_register("r", {"k": [1, 2]}),
        a.map_set("m", "f", "v"),
        a.map_delete("m", "gone"),
        a.set_add("s", "x"),
        a.set_add("s", 7),
        a.set_remove("s", "x"),
    ]
    for delta in deltas:
        b.apply(Delta.from_wire(delta.to_wire()))
    assert b.keys() == a.keys() == ["g", "m", "p", "r", "s"]
    for key in a.digest():
        assert b.get(key) == a.get(key)
        assert b.type_of(key) == a.type_of(key)
    assert a.get("g") == 3 and a.get("p") == 3 and a.get("s") == [7]
    assert a.get("m") == {"f": "v"} and a.get("r") == {"k": [1, 2]}
    assert a.digest() == b.digest()
    assert a.get("missing", "default") == "default"


def test_changed_flags_tell_watchers_whether_the_value_moved() -> None:
    a, b = replica("a"), replica("b")
    assert a.set_register("r", 1).changed
    assert not a.set_register("r", 1).changed
    assert a.map_set("m", "f", 1).changed is True
    assert not a.map_set("m", "f", 1).changed
    assert not a.map_delete("m", "absent").changed
    assert a.map_delete("m", "f").changed
    assert a.set_add("s", "x").changed
    assert not a.set_add("s", "x").changed
    assert a.set_remove("s", "x").changed
    assert not a.set_remove("s", "x").changed
    assert a.incr("g").changed
    add = a.set_add("t", "y")
    assert b.apply(add) is True
    assert b.apply(add) is False  # duplicate delivery
    assert b.apply(a.set_add("t", "y")) is False  # re-add: new dot, same value


def test_incr_works_on_both_counters_and_decr_only_on_pncounter() -> None:
    state = replica("a")
    state.decr("p")
    state.incr("p", 4)
    assert state.get("p") == 3
    state.incr("g")
    with pytest.raises(CrdtTypeMismatch):
        state.decr("g")
    assert state.declare("q", "pncounter").changed
    assert not state.declare("q", "pncounter").changed
    assert state.type_of("q") == "pncounter"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s.incr("s"),
        lambda s: s.decr("g"),
        lambda s: s.set_register("g", 1),
        lambda s: s.map_set("s", "f", 1),
        lambda s: s.map_delete("r", "f"),
        lambda s: s.set_add("m", 1),
        lambda s: s.set_remove("p", 1),
        lambda s: s.declare("g", "orset"),
    ],
)
def test_local_type_mismatch_changes_nothing(mutate: Any) -> None:
    state = populated()
    before = frozen(state)
    with pytest.raises(CrdtTypeMismatch):
        mutate(state)
    assert frozen(state) == before


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s.incr("new", 0),
        lambda s: s.incr("new", -1),
        lambda s: s.incr("g", True),
        lambda s: s.decr("new", 1.5),
        lambda s: s.set_register("new", {1, 2}),
        lambda s: s.map_set("new", "", 1),
        lambda s: s.map_set("new", "f", float("nan")),
        lambda s: s.set_add("new", object()),
        lambda s: s.incr("", 1),
        lambda s: s.incr("k" * 129, 1),
        lambda s: s.declare("new", "nosuchtype"),
    ],
)
def test_invalid_local_arguments_change_nothing(mutate: Any) -> None:
    state = populated()
    before = frozen(state)
    with pytest.raises(CrdtValueError):
        mutate(state)
    assert frozen(state) == before
    assert "new" not in state


def test_remote_type_mismatch_changes_nothing() -> None:
    a, b = populated(), replica("b")
    b.set_add("g", "not a counter")
    before = frozen(a)
    with pytest.raises(CrdtTypeMismatch):
        a.apply(b.full_delta("g"))
    assert frozen(a) == before
    with pytest.raises(CrdtTypeMismatch):
        a.restore(b.snapshot())
    assert frozen(a) == before


@pytest.mark.parametrize(
    "delta",
    [
        Delta("g", "gcounter", {"a": -1}),
        Delta("g", "gcounter", {"b": 5, "c": "x"}),
        Delta("s", "orset", {"e": [["x", [["b", 1]]]], "vv": {}, "dc": []}),
        Delta("new", "lwwreg", [[1, 0, "b"], float("nan")]),
        Delta("new", "nosuchtype", {}),
        Delta("", "gcounter", {}),
        Delta(["key"], "gcounter", {}),  # type: ignore[arg-type]
        Delta("new", ["orset"], {}),  # type: ignore[arg-type]
    ],
)
def test_malformed_delta_changes_nothing(delta: Delta) -> None:
    state = populated()
    before = frozen(state)
    with pytest.raises(CrdtDecodeError):
        state.apply(delta)
    assert frozen(state) == before


@settings(max_examples=200, deadline=None)
@given(
    key=st.sampled_from(["g", "p", "r", "m", "s", "new"]),
    tag=st.sampled_from(["gcounter", "pncounter", "lwwreg", "lwwmap", "orset"]),
    wire=garbage,
)
def test_random_deltas_apply_cleanly_or_change_nothing(key: str, tag: str, wire: Any) -> None:
    state = populated()
    before = frozen(state)
    try:
        state.apply(Delta(key, tag, wire))
    except (CrdtDecodeError, CrdtTypeMismatch, ClockDriftError):
        assert frozen(state) == before


def test_future_timestamp_is_refused_unless_trusted() -> None:
    a = replica("a")
    ahead = Delta("r", "lwwreg", [[NOW + 61_000, 0, "evil"], "future"])
    with pytest.raises(ClockDriftError):
        a.apply(ahead)
    assert "r" not in a
    assert a.apply(ahead, trusted=True)  # own log replay after the wall clock stepped back
    assert a.set_register("r", "mine").changed  # and the next write still wins
    assert a.get("r") == "mine"


def test_causal_write_wins_even_from_a_replica_whose_clock_is_behind() -> None:
    fast, slow = replica("a", NOW + 10_000), replica("b", NOW)
    first = fast.set_register("r", "first")
    slow.apply(first)
    second = slow.set_register("r", "second")  # written after seeing "first"
    fast.apply(second)
    assert fast.get("r") == slow.get("r") == "second"


def test_concurrent_writes_resolve_identically_on_every_replica() -> None:
    a, b = replica("a", NOW + 5), replica("b", NOW + 5)  # same wall ms: replica id decides
    da, db = a.map_set("m", "f", "from-a"), b.map_set("m", "f", "from-b")
    a.apply(db)
    b.apply(da)
    assert a.get("m") == b.get("m") == {"f": "from-b"}


def test_digest_tracks_changes_and_drives_anti_entropy() -> None:
    a, b = populated(), replica("b")
    first = a.digest()
    assert set(first) == set(a.keys()) and all(len(d) == 8 for d in first.values())
    a.incr("g")
    assert a.digest()["g"] != first["g"]
    assert {k: v for k, v in a.digest().items() if k != "g"} == {
        k: v for k, v in first.items() if k != "g"
    }
    b.set_add("s", "only-b")
    for _ in range(2):  # a digest exchange, then full states of the keys that differ
        theirs, mine = b.digest(), a.digest()
        for key in mine:
            if theirs.get(key) != mine[key]:
                b.apply(a.full_delta(key))
        for key in theirs:
            if mine.get(key) != theirs[key]:
                a.apply(b.full_delta(key))
    assert a.digest() == b.digest()
    assert sorted(a.get("s"), key=str) == [7, "only-b"]


def test_snapshot_restore_round_trip_and_bootstrap() -> None:
    a = populated()
    restored = replica("a")
    assert restored.restore(a.snapshot()) == a.keys()
    assert frozen(restored) == frozen(a)
    assert restored.restore(a.snapshot()) == []  # idempotent
    peer = replica("c")
    peer.restore(restored.snapshot(), trusted=False)
    assert peer.digest() == a.digest()


def test_restore_advances_the_clock_past_restored_writes() -> None:
    before = replica("a", NOW + 100_000)
    before.set_register("r", "old")
    after = replica("a", NOW)  # restarted with a wall clock 100 s behind
    after.restore(before.snapshot())
    after.set_register("r", "new")
    assert after.get("r") == "new"


def test_restore_checks_everything_before_merging_anything() -> None:
    state = populated()
    before = frozen(state)
    snapshot = populated().snapshot()
    snapshot["zz"] = ["orset", {"e": "bad"}]
    with pytest.raises(CrdtDecodeError):
        state.restore(snapshot)
    assert frozen(state) == before


def test_replica_and_clock_must_agree() -> None:
    with pytest.raises(CrdtValueError):
        ReplicaState("a", HybridClock("b"))
    assert ReplicaState("a").replica_id == "a"


def test_delta_equality_ignores_the_local_changed_flag() -> None:
    assert Delta("k", "gcounter", {"a": 1}, True) == Delta("k", "gcounter", {"a": 1}, False)


def test_hot_path_delta_is_small() -> None:
    state = ReplicaState("a")
    for _ in range(100):
        delta = state.incr("hits")
    assert delta.to_wire() == ["hits", "gcounter", {"a": 100}]
    assert Timestamp.from_wire([1, 0, "a"]) < Timestamp.from_wire([1, 0, "b"])
