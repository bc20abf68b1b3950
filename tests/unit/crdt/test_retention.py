"""Retention of expiring registers (crdt.retention, ReplicaState): exact edges, the count
limit's order, and, with hypothesis, that replicas which drop keys on their own (expiry,
a count limit) still converge, stay within the limit, and never take a dropped key back
from a replica that still holds it."""

# ruff: noqa: SIM118  (ReplicaState.keys() is a sorted list; the state is not iterable)
from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crdt import Delta, LWWRegister, ReplicaState
from crdt.errors import CrdtDecodeError, CrdtValueError
from crdt.retention import Retention
from tests.support.factories import replica

START_MS = 1_700_000_000_000
REPLICAS = ("a", "b", "c")
PREFIX = "d."


class Clock:
    """A wall clock the test moves (one per replica, so they may disagree)."""

    def __init__(self) -> None:
        self.ms = START_MS

    def __call__(self) -> int:
        return self.ms


# -- the register and the pure tracker --------------------------------------------------


def test_a_ttl_rides_in_the_wire_form_and_sets_the_expiry() -> None:
    clock = Clock()
    state = replica("a", clock)
    delta = state.set_register("k", "v", ttl_ms=500)
    assert delta.wire[2] == 500 and len(delta.wire) == 3
    reg = LWWRegister.from_wire(delta.wire)
    assert reg.expires_ms == START_MS + 500
    assert LWWRegister.from_wire(state.set_register("p", 1).wire).expires_ms is None
    for bad in (0, -1, 1.5, True, "5", 2**41):
        with pytest.raises(CrdtDecodeError):
            LWWRegister.from_wire([delta.wire[0], "v", bad])
        with pytest.raises(CrdtValueError):
            state.set_register("k2", "v", ttl_ms=bad)
    with pytest.raises(CrdtDecodeError):
        LWWRegister.from_wire([delta.wire[0], "v", 5, 6])


def test_an_expired_register_reads_as_absent_and_is_dropped_at_the_exact_time() -> None:
    clock = Clock()
    state = replica("a", clock)
    state.set_register("k", "v", ttl_ms=100)
    clock.ms = START_MS + 99
    assert state.get("k") == "v" and state.expire() == []
    clock.ms = START_MS + 100
    assert state.get("k", "gone") == "gone" and "k" in state  # absent, not yet dropped
    assert state.expire() == ["k"] and "k" not in state
    assert state.drain_dropped() == ["k"] and state.drain_dropped() == []


def test_an_expired_write_is_refused_on_arrival_and_left_out_of_snapshots() -> None:
    clock, late = Clock(), Clock()
    writer, reader = replica("a", clock), replica("b", late)
    delta = writer.set_register("k", "v", ttl_ms=100)
    late.ms = START_MS + 100
    assert reader.apply(delta) is False and "k" not in reader
    clock.ms = START_MS + 100
    assert writer.snapshot() == {}


def test_a_rewrite_moves_the_expiry_and_a_write_without_ttl_stops_it() -> None:
    clock = Clock()
    state = replica("a", clock)
    state.set_register("k", 1, ttl_ms=100)
    clock.ms += 50
    state.set_register("k", 2, ttl_ms=100)
    clock.ms = START_MS + 120
    assert state.expire() == [] and state.get("k") == 2
    state.set_register("k", 3)
    clock.ms += 10**6
    assert state.expire() == [] and state.get("k") == 3


def test_the_limit_drops_what_expires_first_then_by_key() -> None:
    clock = Clock()
    state = replica("a", clock, {PREFIX: 2})
    state.set_register("d.b", 0, ttl_ms=100)  # expires at START + 100
    clock.ms += 1
    state.set_register("d.a", 0, ttl_ms=100)  # START + 101
    state.set_register("other", 0, ttl_ms=1)  # another prefix: not counted
    state.set_register("d.c", 0, ttl_ms=99)  # START + 100, as d.b: ties go by key
    assert state.keys() == ["d.a", "d.c", "other"]
    assert state.drain_dropped() == ["d.b"]


def test_limits_must_be_positive_and_must_not_overlap() -> None:
    tracker = Retention()
    for bad in (0, -1, 1.5, True):
        with pytest.raises(CrdtValueError):
            tracker.limit("d.", bad)
    tracker.limit("d.", 5)
    tracker.limit("d.", 3)  # replaced
    assert tracker.limits() == {"d.": 3}
    for overlapping in ("d.x.", "d"):
        with pytest.raises(CrdtValueError, match="overlap"):
            tracker.limit(overlapping, 3)


def test_setting_a_limit_drops_the_excess_at_once() -> None:
    state = replica("a", Clock())
    for i in range(5):
        state.set_register(f"d.{i}", i, ttl_ms=1000 + i)
    assert state.limit(PREFIX, 2) == ["d.0", "d.1", "d.2"]
    assert state.keys() == ["d.3", "d.4"]


def test_stale_heap_entries_do_not_accumulate() -> None:
    clock = Clock()
    state = replica("a", clock, {PREFIX: 10})
    for n in range(5000):
        clock.ms += 1
        state.set_register(f"d.{n % 7}", n, ttl_ms=10_000)
    tracker = state._retention
    assert len(tracker) == 7
    assert len(tracker._due) <= 2 * 7 + 65
    assert len(tracker._groups[PREFIX].heap) <= 2 * 7 + 65


# -- convergence, with hypothesis --------------------------------------------------------

KEYS = [f"d.{i}" for i in range(6)] + ["x.0", "x.1"]
steps = st.one_of(
    st.tuples(
        st.just("write"),
        st.integers(0, 2),
        st.sampled_from(KEYS),
        st.integers(0, 9),
        st.one_of(st.none(), st.integers(1, 60)),
    ),
    st.tuples(st.just("deliver"), st.integers(0, 2), st.integers(0, 10_000)),
    st.tuples(st.just("sync"), st.integers(0, 2), st.integers(0, 2)),
    st.tuples(st.just("tick"), st.integers(0, 2), st.integers(0, 25)),
    st.tuples(st.just("expire"), st.integers(0, 2)),
)


def expiring(state: ReplicaState) -> list[str]:
    """The keys under PREFIX holding a write that expires: what the limit counts."""
    return [
        k
        for k in state.keys()
        if k.startswith(PREFIX) and LWWRegister.from_wire(state.full_delta(k).wire).expires_ms
    ]


def sync(src: ReplicaState, dst: ReplicaState) -> None:
    """One direction of an anti-entropy exchange: `src`'s full states of every key."""
    for key in src.keys():
        dst.apply(src.full_delta(key))


@settings(max_examples=150, deadline=None)
@given(script=st.lists(steps, max_size=60), limit=st.integers(1, 4), skew=st.integers(0, 30))
def test_replicas_that_drop_on_their_own_still_converge(
    script: list[tuple[Any, ...]], limit: int, skew: int
) -> None:
    clocks = [Clock() for _ in REPLICAS]
    clocks[1].ms -= skew  # b's clock runs behind: it drops later than the others
    states = [replica(n, c, {PREFIX: limit}) for n, c in zip(REPLICAS, clocks, strict=True)]
    sent: list[tuple[int, Delta]] = []  # (writer, delta) of every write, for deliveries
    for step in script:
        kind = step[0]
        if kind == "write":
            _, who, key, value, ttl = step
            sent.append((who, states[who].set_register(key, value, ttl_ms=ttl)))
        elif kind == "deliver" and sent:
            _, who, pick = step
            states[who].apply(sent[pick % len(sent)][1])
        elif kind == "sync":
            sync(states[step[1]], states[step[2]])
        elif kind == "tick":
            clocks[step[1]].ms += step[2]
        elif kind == "expire":
            states[step[1]].expire()
        for state in states:  # the limit holds after every step, on every replica
            assert len(expiring(state)) <= limit
    # then time passes everywhere alike and anti-entropy runs to a fixed point
    now = max(c.ms for c in clocks) + skew
    for clock in clocks:
        clock.ms = now
    for _ in range(4):
        for i in range(3):
            for j in range(3):
                if i != j:
                    sync(states[i], states[j])
        for state in states:
            state.expire()
    snapshots = [s.snapshot() for s in states]
    assert snapshots[0] == snapshots[1] == snapshots[2]
    for key in states[0].keys():  # nothing expired is held
        assert states[0].get(key, "absent") != "absent"
    # a dropped key never comes back: offering every write ever made changes nothing
    before = [s.snapshot() for s in states]
    for state in states:
        for _, delta in sent:
            state.apply(delta)
        state.expire()
    for held, state in zip(before, states, strict=True):
        assert set(expiring(state)) <= set(held)


@settings(max_examples=100, deadline=None)
@given(
    writes=st.lists(st.tuples(st.integers(0, 2), st.integers(1, 40)), min_size=1, max_size=20),
    order=st.randoms(use_true_random=False),
    limit=st.integers(1, 5),
    elapsed=st.integers(0, 45),
)
def test_unique_keys_end_as_the_unexpired_ones_that_expire_last(
    writes: list[tuple[int, int]], order: Any, limit: int, elapsed: int
) -> None:
    """Decision-log shape (each key written once): whatever the delivery order, every
    replica ends with the `limit` unexpired keys that expire last (ties by key)."""
    clock = Clock()
    states = [replica(n, clock, {PREFIX: limit}) for n in REPLICAS]
    deltas = []
    for n, (who, ttl) in enumerate(writes):
        clock.ms += 1
        deltas.append(states[who].set_register(f"d.{n:02d}", n, ttl_ms=ttl))
    clock.ms += elapsed
    for state in states:
        shuffled = list(deltas)
        order.shuffle(shuffled)
        for delta in shuffled:
            state.apply(delta)
        state.expire()
    live = sorted(
        (LWWRegister.from_wire(d.wire).expires_ms, d.key)
        for d in deltas
        if LWWRegister.from_wire(d.wire).expires_ms > clock.ms
    )
    expected = sorted(key for _, key in live[-limit:]) if live else []
    for state in states:
        assert state.keys() == expected
