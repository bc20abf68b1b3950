"""Anti-entropy, pure: bucket hashes find the keys two replicas hold differently, and the
pull/push exchange (paged by a byte budget) makes them equal after lossy delivery."""

from __future__ import annotations

import hashlib
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from crdt import Delta, ReplicaState
from crdt.sync import (
    BUCKETS,
    DigestIndex,
    answer_pull,
    bucket_of,
    differing,
    group_buckets,
)
from crdt.wire import pack
from tests.support.factories import replica

KEYS = [f"k{i}" for i in range(12)]


def mutate(state: ReplicaState, op: tuple[Any, ...]) -> Delta:
    kind, n, item = op
    key = f"{kind}{n}"  # the key name fixes its type, as the docs advise
    if kind == "g":
        return state.incr(key, item + 1)
    if kind == "p":
        return state.decr(key, item + 1)
    if kind == "r":
        return state.set_register(key, item)
    if kind == "m":
        if item % 3 == 0:
            return state.map_delete(key, f"f{item % 4}")
        return state.map_set(key, f"f{item % 4}", item)
    if item % 3 == 0:
        return state.set_remove(key, item % 4)
    return state.set_add(key, item % 4)


ops = st.tuples(st.sampled_from("gprms"), st.integers(0, 20), st.integers(0, 9))


def exchange(puller: ReplicaState, peer: ReplicaState, budget: int) -> int:
    """One anti-entropy exchange as the replicator runs it; returns the pages used."""
    mine, theirs = DigestIndex(puller), DigestIndex(peer)
    pages = 0
    for group in group_buckets(mine, differing(mine.buckets(), theirs.buckets()), 5):
        while True:
            pages += 1
            scope = theirs.keys_in(group)
            answer = answer_pull(peer, scope, mine.digests(mine.keys_in(group)), budget)
            for record in answer.records:
                puller.apply(Delta.from_wire(record))
                mine.touch(record[0])
            for key in answer.want:
                peer.apply(puller.full_delta(key))
                theirs.touch(key)
            if not answer.more:
                break
    return pages


@settings(max_examples=150, deadline=None)
@given(
    script=st.lists(st.tuples(st.integers(0, 1), ops, st.floats(0, 1)), max_size=60),
    budget=st.sampled_from([1, 64, 1 << 20]),
)
def test_exchange_after_lossy_delivery_converges_to_the_join(
    script: list[tuple[int, tuple[Any, ...], float]], budget: int
) -> None:
    a, b = replica("a"), replica("b")
    everything = replica("z")  # receives every delta: the join of all writes
    for who, op, loss in script:
        src, dst = (a, b) if who == 0 else (b, a)
        delta = mutate(src, op)
        everything.apply(delta)
        if loss < 0.5:  # half the deltas are lost; anti-entropy must repair them
            dst.apply(delta)
    exchange(a, b, budget)
    assert a.digest() == b.digest() == everything.digest()
    assert a.snapshot() == everything.snapshot()


def test_equal_states_have_equal_buckets_and_nothing_to_pull() -> None:
    a, b = replica("a"), replica("b")
    for key in KEYS:
        b.apply(a.incr(key))
    ia, ib = DigestIndex(a), DigestIndex(b)
    assert ia.buckets() == ib.buckets() and ia.top() == ib.top()
    assert differing(ia.buckets(), ib.buckets()) == []
    answer = answer_pull(b, ib.keys_in(range(BUCKETS)), ia.digests(KEYS), 1 << 20)
    assert answer.records == [] and answer.want == [] and not answer.more


def test_touch_recomputes_only_what_changed() -> None:
    a = replica("a")
    index = DigestIndex(a)
    empty = index.buckets()
    top = index.top()
    a.incr("k1")
    assert index.buckets() == empty  # not touched yet: the cache still holds
    index.touch("k1")
    changed = differing(empty, index.buckets())
    assert changed == [bucket_of("k1")]
    assert index.top() != top


def test_a_fresh_replica_pulls_everything_in_pages() -> None:
    peer = replica("p")
    for key in KEYS:
        peer.map_set(key, "f", "x" * 50)
    fresh = replica("f")
    pages = exchange(fresh, peer, budget=200)  # about two records a page
    assert fresh.snapshot() == peer.snapshot()
    assert pages >= len(KEYS) // 3


def test_group_buckets_bounds_digests_per_request() -> None:
    a = replica("a")
    index = DigestIndex(a)
    for i in range(300):
        key = f"key{i}"
        a.incr(key)
        index.touch(key)
    groups = group_buckets(index, range(BUCKETS), 20)
    assert sorted(b for g in groups for b in g) == list(range(BUCKETS))
    for group in groups:
        assert len(group) == 1 or sum(index.count(b) for b in group) <= 20


def reference_bucket_hashes(state: ReplicaState) -> list[bytes]:
    """The definition replicas must agree on: per bucket, BLAKE2b-8 over msgpack(key) and
    the key's digest, keys in sorted order (8 zero bytes for an empty bucket)."""
    held = state.keys()
    hashes = []
    for bucket in range(BUCKETS):
        keys = sorted(k for k in held if bucket_of(k) == bucket)
        if not keys:
            hashes.append(bytes(8))
            continue
        h = hashlib.blake2b(digest_size=8)
        for key in keys:
            h.update(pack(key) + state.digest_of(key))
        hashes.append(h.digest())
    return hashes


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.text(min_size=1, max_size=12), max_size=60, unique=True),
    st.lists(st.integers(0, 59), max_size=20),
    st.integers(1, 60),
)
def test_bucket_hashes_follow_their_definition_through_touches_and_drops(
    names: list[str], rewrites: list[int], keep: int
) -> None:
    state = replica("a")
    keys = [f"p.{name}" for name in names]
    for i, key in enumerate(keys):
        state.set_register(key, i, 3_600_000)  # expiring: retention may drop them
    index = DigestIndex(state)
    assert index.buckets() == reference_bucket_hashes(state)
    for n in rewrites:  # changed values: touched, recomputed from the fresh digests
        if n < len(keys):
            state.set_register(keys[n], -n - 1, 3_600_000)
            index.touch(keys[n])
    assert index.buckets() == reference_bucket_hashes(state)
    state.limit("p.", keep)  # the ones past `keep` are dropped and leave their buckets
    for key in state.drain_dropped():
        index.discard(key)
    assert len(state) == min(keep, len(keys))
    assert index.buckets() == reference_bucket_hashes(state)


def test_a_bucket_emptied_by_drops_hashes_as_one_never_used() -> None:
    # equal states, one of which held and dropped a key: their buckets and tops agree, so
    # anti-entropy does not sync them every round for nothing
    a, b = replica("a"), replica("b")
    a.set_register("p.gone", 1, 3_600_000)
    index = DigestIndex(a)
    index.buckets()
    a.limit("p.", 1)
    a.set_register("p.kept", 2, 3_600_000)  # expires later: "p.gone" goes first
    b.apply(a.full_delta("p.kept"))
    for key in a.drain_dropped():
        index.discard(key)
    index.touch("p.kept")
    assert "p.gone" not in a and a.snapshot() == b.snapshot()
    assert index.buckets() == DigestIndex(b).buckets() and index.top() == DigestIndex(b).top()
