"""The anti-replay window (RFC 4303 / RFC 6479 semantics), pure and property-tested."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amcp import Reason, ReplayGuard

NOW = 1_800_000_000_000


def admit(
    guard: ReplayGuard, seq: int, sender: str = "s", epoch: int = 1, ts: int = NOW
) -> str | None:
    reason = guard.check(sender, epoch, seq, ts, NOW)
    if reason is None:
        guard.commit(sender, epoch, seq, ts, NOW)
    return reason


@given(st.permutations(list(range(1, 200))), st.lists(st.integers(1, 199), max_size=50))
def test_any_arrival_order_inside_the_window_accepts_each_seq_exactly_once(
    order: list[int], duplicates: list[int]
) -> None:
    guard = ReplayGuard(window=256)
    accepted = [seq for seq in order + duplicates if admit(guard, seq) is None]
    assert sorted(accepted) == list(range(1, 200))


@given(st.lists(st.integers(1, 5000), min_size=1, max_size=300))
def test_never_accepts_a_duplicate_and_matches_a_model(seqs: list[int]) -> None:
    window = 64
    guard, seen, top = ReplayGuard(window=window), set(), 0
    for seq in seqs:
        expected = seq not in seen and (seq > top or top - seq < window)
        assert (admit(guard, seq) is None) == expected
        if expected:
            seen.add(seq)
            top = max(top, seq)


def test_a_seq_that_fell_out_of_the_window_is_a_replay() -> None:
    guard = ReplayGuard(window=32)
    assert admit(guard, 100) is None
    assert admit(guard, 69) is None  # 100 - 69 = 31 < 32
    assert admit(guard, 68) == Reason.REPLAY
    assert admit(guard, 100 + 10_000) is None  # a big jump resets the bitmap
    assert admit(guard, 100) == Reason.REPLAY


def test_check_alone_never_moves_the_window() -> None:
    guard = ReplayGuard()
    assert guard.check("s", 1, 5, NOW, NOW) is None
    assert guard.check("s", 1, 5, NOW, NOW) is None  # not committed: still acceptable
    guard.commit("s", 1, 5, NOW, NOW)
    assert guard.check("s", 1, 5, NOW, NOW) == Reason.REPLAY


def test_skew_both_ways_and_epochs() -> None:
    guard = ReplayGuard(skew_ms=30_000)
    assert guard.check("s", 1, 1, NOW - 30_001, NOW) == Reason.STALE
    assert guard.check("s", 1, 1, NOW + 30_001, NOW) == Reason.STALE
    assert admit(guard, 1, epoch=5) is None
    assert admit(guard, 1, epoch=6) is None  # the sender restarted: a new window
    assert admit(guard, 2, epoch=5) == Reason.STALE  # its old epoch is closed


def test_memory_is_bounded_and_eviction_does_not_reopen_replays() -> None:
    guard = ReplayGuard(max_senders=10)
    assert admit(guard, 1, sender="victim", ts=NOW - 5) is None
    for i in range(100):
        admit(guard, 1, sender=f"s{i}", ts=NOW - 1)
    assert len(guard) == 10
    assert guard.evicted_floor_ms >= NOW - 5
    # The victim is no longer tracked, yet its old frame is not accepted again.
    assert admit(guard, 1, sender="victim", ts=NOW - 5) == Reason.STALE
    assert admit(guard, 1, sender="newcomer", ts=NOW) is None


def test_invalid_configuration_is_refused() -> None:
    with pytest.raises(ValueError):
        ReplayGuard(window=8)
