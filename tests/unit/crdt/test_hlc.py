"""Hybrid logical clock: monotonic, causal, bounded drift, deterministic total order."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crdt import ClockDriftError, CrdtDecodeError, CrdtValueError, HybridClock, Timestamp
from crdt.hlc import MAX_LOGICAL


class Wall:
    """A settable wall clock in milliseconds."""

    def __init__(self, ms: int = 1_000_000) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


def test_timestamps_order_by_wall_then_logical_then_replica() -> None:
    assert Timestamp(1, 9, "z") < Timestamp(2, 0, "a")
    assert Timestamp(2, 0, "z") < Timestamp(2, 1, "a")
    assert Timestamp(2, 1, "a") < Timestamp(2, 1, "b")
    assert Timestamp.from_wire(Timestamp(2, 1, "a").to_wire()) == Timestamp(2, 1, "a")


@settings(max_examples=150, deadline=None)
@given(moves=st.lists(st.integers(-2_000, 2_000), max_size=50))
def test_now_is_strictly_monotonic_even_when_the_wall_clock_steps_back(moves: list[int]) -> None:
    wall = Wall()
    clock = HybridClock("a", wall)
    last = clock.now()
    for move in moves:
        wall.ms = max(0, wall.ms + move)
        ts = clock.now()
        assert ts > last
        assert ts.wall_ms >= wall.ms
        last = ts


@settings(max_examples=150, deadline=None)
@given(
    skew=st.integers(-30_000, 30_000),
    events=st.lists(st.sampled_from(["a", "b", "a->b", "b->a"]), max_size=40),
)
def test_observed_timestamps_are_causally_ordered_despite_skew(
    skew: int, events: list[str]
) -> None:
    """Whatever the skew, an event after receiving a message is stamped after the send."""
    wall_a, wall_b = Wall(1_000_000), Wall(1_000_000 + skew)
    a, b = HybridClock("a", wall_a), HybridClock("b", wall_b)
    for event in events:
        wall_a.ms += 1
        wall_b.ms += 1
        if event == "a":
            a.now()
        elif event == "b":
            b.now()
        else:
            sender, receiver = (a, b) if event == "a->b" else (b, a)
            sent = sender.now()
            assert receiver.observe(sent) > sent
            assert receiver.now() > sent


def test_a_timestamp_too_far_ahead_is_refused_and_the_clock_is_untouched() -> None:
    wall = Wall()
    clock = HybridClock("a", wall, max_offset_ms=1_000)
    before = clock.now()
    with pytest.raises(ClockDriftError):
        clock.observe(Timestamp(wall.ms + 1_001, 0, "evil"))
    assert clock.last == before
    clock.observe(Timestamp(wall.ms + 1_000, 7, "b"))  # at the bound: accepted
    assert clock.last == Timestamp(wall.ms + 1_000, 8, "a")


def test_logical_overflow_borrows_a_millisecond() -> None:
    wall = Wall(50)
    clock = HybridClock("a", wall)
    clock.observe(Timestamp(50, MAX_LOGICAL, "b"))
    assert clock.last == Timestamp(51, 0, "a")
    assert clock.now() == Timestamp(51, 1, "a")


def test_advance_trusts_own_history_beyond_the_offset() -> None:
    clock = HybridClock("a", Wall(10), max_offset_ms=0)
    clock.advance(Timestamp(99_999, 3, "a"))
    assert clock.now() == Timestamp(99_999, 4, "a")
    clock.advance(Timestamp(5, 0, "a"))  # never moves back
    assert clock.now() == Timestamp(99_999, 5, "a")


@pytest.mark.parametrize(
    "wire",
    [None, [], [1, 2], [1, 2, 3], [1, 2, "a", 4], [True, 0, "a"], [1, -1, "a"], ["1", 0, "a"]],
)
def test_timestamp_from_wire_is_strict(wire: object) -> None:
    with pytest.raises(CrdtDecodeError):
        Timestamp.from_wire(wire)


def test_clock_arguments_are_checked() -> None:
    with pytest.raises(CrdtValueError):
        HybridClock("")
    with pytest.raises(CrdtValueError):
        HybridClock("a", max_offset_ms=-1)
