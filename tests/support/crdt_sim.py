"""A simulator of CRDT replicas checked against sequential models of each type, and the
hypothesis strategies of its scripts (used by test_laws.py and test_wire.py).

It runs random scripts on three replicas with skewed wall clocks: local operations, delta
deliveries (any delta, in any order, duplicated or never), full-state syncs and clock
ticks. Its model computes the expected value from the operations alone: counters sum, LWW
keeps the greatest timestamp, and an OR-set element is present iff some add of it is not
in the causal past of any remove of it (add wins).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

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
