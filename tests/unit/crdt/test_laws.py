"""CRDT laws and convergence, checked against sequential models of each type run by the
simulator of tests/support/crdt_sim.py (three replicas, skewed clocks, deltas delivered in
any order, duplicated or never)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crdt import GCounter, LWWMap, LWWRegister, ORSet, PNCounter
from crdt.base import Crdt
from crdt.hlc import Timestamp
from crdt.wire import pack
from tests.support.crdt_sim import KINDS, REPLICAS, Sim, scripts, skews


def same(a: Crdt, b: Crdt) -> bool:
    return pack(a.to_wire()) == pack(b.to_wire())


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.type_tag)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_merge_is_commutative_associative_idempotent(kind: type[Crdt], data: Any) -> None:
    pool = Sim(kind, data.draw(skews)).run(data.draw(scripts(kind))).pool()
    a, b, c = (data.draw(st.sampled_from(pool)) for _ in range(3))
    assert same(a.merged(b), b.merged(a))
    assert same(a.merged(b).merged(c), a.merged(b.merged(c)))
    assert same(a.merged(a), a)
    before = pack(a.value())
    target = a.copy()
    assert target.merge(b) == (pack(target.value()) != before)  # True iff value changed
    assert same(a, a.copy())


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.type_tag)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_lossy_delivery_then_anti_entropy_converges_to_model(kind: type[Crdt], data: Any) -> None:
    sim = Sim(kind, data.draw(skews)).run(data.draw(scripts(kind))).anti_entropy()
    states = list(sim.states.values())
    assert all(pack(s.to_wire()) == pack(states[0].to_wire()) for s in states)
    assert pack(states[0].value()) == pack(sim.model())


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.type_tag)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_every_delta_in_any_order_converges_without_repair(kind: type[Crdt], data: Any) -> None:
    sim = Sim(kind, data.draw(skews)).run(data.draw(scripts(kind)))
    for replica in REPLICAS:
        order = data.draw(st.permutations(range(len(sim.deltas))))
        dups = data.draw(st.lists(st.integers(0, max(len(sim.deltas) - 1, 0)), max_size=5))
        for i in [*order, *(d for d in dups if sim.deltas)]:
            sim.states[replica].merge(sim.deltas[i][1])
    states = list(sim.states.values())
    assert all(same(s, states[0]) for s in states)
    assert pack(states[0].value()) == pack(sim.model())


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.type_tag)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_state_only_grows_so_old_states_change_nothing(kind: type[Crdt], data: Any) -> None:
    """Merging any earlier state of a replica into it is a no-op: a removed OR-set element
    (or an overwritten LWW value) cannot come back from a stale copy."""
    sim = Sim(kind, data.draw(skews)).run(data.draw(scripts(kind)))
    for replica, old in sim.history:
        current = sim.states[replica]
        wire = pack(current.to_wire())
        assert current.merge(old) is False
        assert pack(current.to_wire()) == wire


def test_orset_removed_element_does_not_return_from_an_old_state() -> None:
    a, b = ORSet(), ORSet()
    b.merge(a.add("a", "x"))
    stale = b.copy()  # b saw the add
    b.merge(a.remove("x"))
    a.merge(stale)
    b.merge(stale)
    assert a.value() == b.value() == []


def test_orset_concurrent_add_wins_over_remove() -> None:
    a, b = ORSet(), ORSet()
    b.merge(a.add("a", "x"))
    removal = a.remove("x")
    readd = b.add("b", "x")  # concurrent with the removal: b never saw it
    a.merge(readd)
    b.merge(removal)
    assert a.value() == b.value() == ["x"]
    assert same(a, b)


def test_orset_state_stays_bounded_over_many_add_remove_cycles() -> None:
    a, b = ORSet(), ORSet()
    for i in range(2_000):
        b.merge(a.add("a", "x"))
        a.merge(b.add("b", i % 7))
        b.merge(a.remove(i % 7))
        a.merge(b.remove("x"))
        if i == 10:
            early = len(pack(a.to_wire()))
    assert same(a, b)
    assert a.value() == []
    # no tombstones: only the version vector grows, in its counters' digits
    assert len(pack(a.to_wire())) <= early + 8
    assert a.to_wire()["dc"] == []


def test_orset_context_compacts_after_lost_deltas_are_repaired() -> None:
    a, b = ORSet(), ORSet()
    deltas = [a.add("a", n) for n in range(50)] + [a.remove(n) for n in range(0, 50, 2)]
    for i, delta in enumerate(deltas):
        if i % 3:  # drop a third
            b.merge(delta)
    assert b.to_wire()["dc"]  # gaps left by the drops
    b.merge(a)  # anti-entropy
    assert same(a, b)
    assert b.to_wire()["dc"] == []
    assert b.to_wire()["vv"] == {"a": 50}
    assert b.value() == list(range(1, 50, 2))


def test_lww_concurrent_writes_resolve_by_timestamp_then_replica_id() -> None:
    ts_a, ts_b = Timestamp(5, 0, "a"), Timestamp(5, 0, "b")
    x, y = LWWRegister(), LWWRegister()
    dx, dy = x.assign("from-a", ts_a), y.assign("from-b", ts_b)
    x.merge(dy)
    y.merge(dx)
    assert x.value() == y.value() == "from-b"


def test_lww_tie_on_reused_timestamp_still_commutes() -> None:
    ts = Timestamp(5, 0, "a")
    one, two = LWWRegister(ts, "one"), LWWRegister(ts, "two")
    assert same(one.merged(two), two.merged(one))
    m1, m2 = LWWMap(), LWWMap()
    m1.set("f", 1, ts)
    m2.delete("f", ts)
    assert same(m1.merged(m2), m2.merged(m1))


def test_counter_deltas_carry_only_the_changed_entry() -> None:
    counter = GCounter({"b": 7, "c": 1})
    assert counter.increment("a", 3).to_wire() == {"a": 3}
    pn = PNCounter()
    assert pn.decrement("a", 2).to_wire() == {"n": {"a": 2}, "p": {}}
    assert pn.increment("a").to_wire() == {"n": {}, "p": {"a": 1}}
    assert pn.value() == -1
