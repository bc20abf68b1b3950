"""BatchAccumulator: flush on count, bytes, deadline, policy change and drain; nothing lost."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from netopt import Batch, BatchAccumulator, BatchPolicy, FlushReason


def items_of(batches: list[Batch[str]]) -> list[str]:
    return [item for b in batches for item in b.items]


def test_flushes_when_max_messages_is_reached() -> None:
    acc: BatchAccumulator[str] = BatchAccumulator(BatchPolicy(3, 10_000, 1.0))
    assert acc.add("a", 1, 0.0) == []
    assert acc.add("b", 1, 0.1) == []
    [batch] = acc.add("c", 1, 0.2)
    assert batch == Batch(("a", "b", "c"), 3, 0.0, FlushReason.COUNT)
    assert len(acc) == 0
    assert acc.next_deadline() is None


def test_flushes_when_max_bytes_is_reached() -> None:
    acc: BatchAccumulator[str] = BatchAccumulator(BatchPolicy(100, 100, 1.0))
    assert acc.add("a", 60, 0.0) == []
    [batch] = acc.add("b", 40, 0.0)
    assert batch.items == ("a", "b")
    assert batch.reason is FlushReason.BYTES


def test_an_item_that_would_overflow_the_bytes_closes_the_batch_before_it() -> None:
    acc: BatchAccumulator[str] = BatchAccumulator(BatchPolicy(100, 100, 1.0))
    acc.add("a", 60, 0.0)
    [batch] = acc.add("b", 50, 0.0)
    assert (batch.items, batch.nbytes) == (("a",), 60)
    assert len(acc) == 1


def test_an_oversized_item_travels_alone() -> None:
    acc: BatchAccumulator[str] = BatchAccumulator(BatchPolicy(100, 100, 1.0))
    acc.add("a", 10, 0.0)
    first, alone = acc.add("huge", 500, 0.0)
    assert first.items == ("a",)
    assert (alone.items, alone.nbytes) == (("huge",), 500)


def test_flushes_at_the_linger_deadline_of_its_first_item() -> None:
    acc: BatchAccumulator[str] = BatchAccumulator(BatchPolicy(100, 10_000, 0.005))
    acc.add("a", 1, 10.0)
    acc.add("b", 1, 10.003)
    assert acc.next_deadline() == 10.005
    assert acc.due(10.004) == []
    [batch] = acc.due(10.005)
    assert batch == Batch(("a", "b"), 2, 10.0, FlushReason.DEADLINE)
    assert acc.due(11.0) == []


def test_natural_batching_hands_over_what_queued_without_waiting() -> None:
    acc: BatchAccumulator[str] = BatchAccumulator(BatchPolicy(100, 10_000, 0.0))
    assert acc.add("a", 1, 5.0) == []  # the caller's sender has not run yet
    acc.add("b", 1, 5.0)
    assert acc.next_deadline() == 5.0
    [batch] = acc.due(5.0)
    assert batch.items == ("a", "b")


def test_no_batching_sends_each_item_at_once() -> None:
    acc: BatchAccumulator[str] = BatchAccumulator(BatchPolicy(1, 10_000, 0.0))
    assert [b.items for b in acc.add("a", 1, 0.0)] == [("a",)]


def test_drain_returns_everything_queued() -> None:
    acc: BatchAccumulator[str] = BatchAccumulator(BatchPolicy(100, 10_000, 60.0))
    acc.add("a", 1, 0.0)
    acc.add("b", 1, 0.0)
    [batch] = acc.drain()
    assert (batch.items, batch.reason) == (("a", "b"), FlushReason.DRAIN)
    assert acc.drain() == []


def test_a_policy_change_closes_the_open_batch() -> None:
    acc: BatchAccumulator[str] = BatchAccumulator(BatchPolicy(100, 10_000, 1.0))
    acc.add("a", 1, 0.0)
    assert acc.set_policy(BatchPolicy(100, 10_000, 1.0)) == []  # unchanged
    [batch] = acc.set_policy(BatchPolicy(2, 10_000, 0.0))
    assert (batch.items, batch.reason) == (("a",), FlushReason.POLICY)
    assert acc.policy == BatchPolicy(2, 10_000, 0.0)


policies = st.builds(
    BatchPolicy, st.integers(1, 8), st.integers(1, 400), st.sampled_from([0.0, 0.001, 0.01])
)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 150), st.floats(0.0, 0.004)),
        st.tuples(st.just("due"), st.just(0), st.floats(0.0, 0.02)),
        st.tuples(st.just("policy"), policies, st.just(0.0)),
    ),
    max_size=120,
)


@given(policies, ops)
def test_every_item_comes_out_exactly_once_in_order_within_limits(
    policy: BatchPolicy, steps: list[tuple[str, object, float]]
) -> None:
    acc: BatchAccumulator[int] = BatchAccumulator(policy)
    now = 0.0
    added: list[int] = []
    out: list[Batch[int]] = []
    for op, arg, dt in steps:
        now += dt
        if op == "add":
            assert isinstance(arg, int)
            added.append(len(added))
            batches = acc.add(added[-1], arg, now)
        elif op == "due":
            batches = acc.due(now)
        else:
            assert isinstance(arg, BatchPolicy)
            batches = acc.set_policy(arg)
        for b in batches:
            assert len(b.items) >= 1
            if b.reason is not FlushReason.POLICY:
                assert len(b.items) <= acc.policy.max_messages
                assert b.nbytes <= acc.policy.max_bytes or len(b.items) == 1
            assert b.opened_at <= now
        out.extend(batches)
        deadline = acc.next_deadline()
        assert (deadline is None) == (len(acc) == 0)
    out.extend(acc.drain())
    assert [i for b in out for i in b.items] == added
    assert len(acc) == 0
