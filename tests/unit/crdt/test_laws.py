"""CRDT laws and convergence, checked against sequential models of each type.

A simulator runs random scripts on three replicas with skewed wall clocks: local
operations, delta deliveries (any delta, in any order, duplicated or never), full-state
syncs and clock ticks. Its model computes the expected value from the operations alone:
counters sum, LWW keeps the greatest timestamp, and an OR-set element is present iff some
add of it is not in the causal past of any remove of it (add wins).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crdt import GCounter, HybridClock, LWWMap, LWWRegister, ORSet, PNCounter
from crdt.base import Crdt
from crdt.hlc import Timestamp
from crdt.wire import normalize, pack

REPLICAS = ("a", "b", "c")
START_MS = 1_700_000_000_000
KINDS: list[type[Crdt]] = [GCounter, PNCounter, LWWRegister, LWWMap, ORSet]

# Small pools make collisions (same element, same field) frequent. 1, True and 1.0 are
# distinct values on the wire, so they are distinct set elements.
ITEMS = ["x", "y", 1, True, 1.0, b"x", [1, "x"], {"b": 1, "a": [None]}]
VALUES = [None, 0, -1, 2.5, "v", b"\x00", True, [1, [2]], {"z": 1, "a": {"k": "v"}}]
FIELDS = ["f", "g", "h"]

amounts = st.integers(1, 5)
OPS: dict[type[Crdt], st.SearchStrategy[tuple[Any, ...]]] = {
    GCounter: st.tuples(st.just("inc"), amounts),
    PNCounter: st.tuples(st.sampled_from(["inc", "dec"]), amounts),
    LWWRegister: st.tuples(st.just("set"), st.sampled_from(VALUES)),
    LWWMap: st.one_of(
        st.tuples(st.just("mset"), st.sampled_from(FIELDS), st.sampled_from(VALUES)),
        st.tuples(st.just("mdel"), st.sampled_from(FIELDS)),
    ),
    ORSet: st.tuples(st.sampled_from(["add", "add", "rm"]), st.sampled_from(ITEMS)),
}

replica_index = st.integers(0, len(REPLICAS) - 1)


def steps(kind: type[Crdt]) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.one_of(
        st.tuples(st.just("op"), replica_index, OPS[kind]),
        st.tuples(st.just("op"), replica_index, OPS[kind]),
        st.tuples(st.just("deliver"), replica_index, st.integers(0, 10_000)),
        st.tuples(st.just("sync"), replica_index, replica_index),
        st.tuples(st.just("tick"), st.integers(0, 40)),
    )


def scripts(kind: type[Crdt], max_size: int = 40) -> st.SearchStrategy[list[tuple[Any, ...]]]:
    return st.lists(steps(kind), max_size=max_size)


skews = st.tuples(*[st.integers(-5_000, 5_000) for _ in REPLICAS])


def element_key(item: Any) -> bytes:
    return pack(normalize(item, ValueError))


@dataclass
class Op:
    replica: str
    op: tuple[Any, ...]
    ts: Timestamp | None
    past: frozenset[int]  # ids of same-element OR-set ops this one causally follows


@dataclass
class Sim:
    """Replicas of one type, the deltas they emitted and the model's view of causality."""

    kind: type[Crdt]
    skew: tuple[int, ...] = (0, 0, 0)
    time: int = START_MS
    ops: list[Op] = field(default_factory=list)
    deltas: list[tuple[int, Crdt]] = field(default_factory=list)  # (op id, delta)
    history: list[tuple[str, Crdt]] = field(default_factory=list)  # old states, per replica

    def __post_init__(self) -> None:
        self.states = {r: self.kind() for r in REPLICAS}
        self.clocks = {
            r: HybridClock(r, wall=lambda i=i: self.time + self.skew[i])
            for i, r in enumerate(REPLICAS)
        }
        # per replica, per element key: ids of the ops whose effect it has seen
        self.seen: dict[str, dict[bytes, frozenset[int]]] = {
            r: defaultdict(frozenset) for r in REPLICAS
        }

    def run(self, script: list[tuple[Any, ...]]) -> Sim:
        for step in script:
            if step[0] == "op":
                self.local(REPLICAS[step[1]], step[2])
            elif step[0] == "deliver" and self.deltas:
                op_id, delta = self.deltas[step[2] % len(self.deltas)]
                self.receive(REPLICAS[step[1]], delta, [op_id])
            elif step[0] == "sync":
                source, target = REPLICAS[step[1]], REPLICAS[step[2]]
                self.receive(target, self.states[source], None, self.seen[source])
            elif step[0] == "tick":
                self.time += step[1]
        return self

    def local(self, replica: str, op: tuple[Any, ...]) -> None:
        state, clock = self.states[replica], self.clocks[replica]
        self.history.append((replica, state.copy()))
        name, *args = op
        if name == "inc":
            delta = state.increment(replica, *args)
        elif name == "dec":
            delta = state.decrement(replica, *args)
        elif name == "set":
            delta = state.assign(args[0], clock.now())
        elif name == "mset":
            delta = state.set(args[0], args[1], clock.now())
        elif name == "mdel":
            delta = state.delete(args[0], clock.now())
        elif name == "add":
            delta = state.add(replica, args[0])
        else:
            delta = state.remove(args[0])
        op_id = len(self.ops)
        past = frozenset()
        if name in ("add", "rm"):
            key = element_key(args[0])
            past = self.seen[replica][key] | {op_id}
            self.seen[replica][key] = past
        self.ops.append(Op(replica, op, delta.latest(), past))
        self.deltas.append((op_id, delta))

    def receive(
        self,
        replica: str,
        incoming: Crdt,
        op_ids: list[int] | None,
        seen: dict[bytes, frozenset[int]] | None = None,
    ) -> None:
        self.history.append((replica, self.states[replica].copy()))
        self.states[replica].merge(incoming)
        if (ts := incoming.latest()) is not None:
            self.clocks[replica].observe(ts)
        mine = self.seen[replica]
        for op_id in op_ids or ():
            for key in self.element_keys(op_id):
                mine[key] = mine[key] | self.ops[op_id].past
        for key, ids in (seen or {}).items():
            mine[key] = mine[key] | ids

    def element_keys(self, op_id: int) -> list[bytes]:
        op = self.ops[op_id].op
        return [element_key(op[1])] if op[0] in ("add", "rm") else []

    def anti_entropy(self) -> Sim:
        """Full-state repair: the first replica pulls from all, then all pull from it."""
        first = self.states[REPLICAS[0]]
        for replica in REPLICAS[1:]:
            first.merge(self.states[replica])
        for replica in REPLICAS[1:]:
            self.states[replica].merge(first)
        return self

    def pool(self) -> list[Crdt]:
        """Every state and delta seen in the run, plus the empty state."""
        return [
            self.kind(),
            *self.states.values(),
            *(d for _, d in self.deltas),
            *(s for _, s in self.history),
        ]

    def model(self) -> Any:
        ops = [o.op for o in self.ops]
        if self.kind is GCounter:
            return sum(op[1] for op in ops)
        if self.kind is PNCounter:
            return sum(op[1] if op[0] == "inc" else -op[1] for op in ops)
        if self.kind is LWWRegister:
            if not self.ops:
                return None
            return normalize(max(self.ops, key=lambda o: o.ts).op[1], ValueError)
        if self.kind is LWWMap:
            winners: dict[str, Op] = {}
            for o in self.ops:
                f = o.op[1]
                if f not in winners or o.ts > winners[f].ts:
                    winners[f] = o
            return {
                f: normalize(o.op[2], ValueError)
                for f, o in sorted(winners.items())
                if o.op[0] == "mset"
            }
        present = {}
        for op_id, o in enumerate(self.ops):
            if o.op[0] != "add":
                continue
            key = element_key(o.op[1])
            removes = [r for r in self.ops if r.op[0] == "rm" and element_key(r.op[1]) == key]
            if not any(op_id in r.past for r in removes):
                present[key] = normalize(o.op[1], ValueError)
        return [present[key] for key in sorted(present)]


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
