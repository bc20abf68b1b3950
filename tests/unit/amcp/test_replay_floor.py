"""The eviction floor of the replay guard (issue 14, points 1 and 5), for the compiled guard
and the Python reference alike: a live receiver accepts no frame signed before it started,
even from a sender it tracks again since; evictions never let a frame in twice from a
sender whose clock is not ahead of the receiver's; and a flood of future-stamped senders
never locks a current sender out."""

from __future__ import annotations

import importlib.util

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from amcp import Reason
from amcp.replay import PyReplayGuard, live_guard

if importlib.util.find_spec("amcp._speedups") is not None:
    from amcp._speedups import ReplayGuard as CReplayGuard
else:
    CReplayGuard = PyReplayGuard

GUARDS = pytest.mark.parametrize("cls", [CReplayGuard, PyReplayGuard], ids=["c", "python"])
START = 1_800_000_000_000
SKEW = 30_000


def frame(guard, sender: str, epoch: int, seq: int, ts: int, now: int) -> str | None:
    """One frame through the guard as an Opener does: check, then commit if it passed."""
    reason = guard.check(sender, epoch, seq, ts, now)
    if reason is None:
        guard.commit(sender, epoch, seq, ts, now)
    return reason


@GUARDS
@given(ahead=st.integers(0, SKEW), behind=st.integers(1, SKEW), seq=st.integers(1, 1 << 40))
def test_a_live_guard_refuses_frames_stamped_before_it_started(
    cls, ahead: int, behind: int, seq: int
) -> None:
    guard = cls(1024, SKEW, 16, START - 1)
    assert frame(guard, "old", 1, seq, START - behind, START) == Reason.STALE
    assert frame(guard, "new", 1, seq, START + ahead, START) is None


def test_live_guard_starts_at_the_receivers_clock() -> None:
    guard = live_guard(64, SKEW, 8, START / 1000)
    assert guard.evicted_floor_ms == START - 1
    assert guard.check("s", 1, 1, START - 1, START) == Reason.STALE
    assert guard.check("s", 1, 1, START, START) is None


@GUARDS
@given(
    old=st.lists(st.integers(1, 500), min_size=1, max_size=20),
    first_new=st.integers(501, 900),
    age=st.integers(1, SKEW - 1),
)
def test_frames_from_before_the_start_stay_refused_once_the_sender_is_tracked_again(
    cls, old: list[int], first_new: int, age: int
) -> None:
    """A sender that kept sending across the receiver's restart is tracked again from its
    first new frame; its frames from before, lower seqs in the same epoch, still replay
    nothing (in a window of their own they would look unseen)."""
    guard = cls(1024, SKEW, 16, START - 1)
    assert frame(guard, "s", 7, first_new, START + 5, START + 5) is None
    for seq in old:
        assert frame(guard, "s", 7, seq, START - age, START + 6) == Reason.STALE
    assert guard.admit("s", 7, old, START - age, START + 6) == [False] * len(old)
    # A late frame signed after the start is not a replay: it is let in once.
    assert frame(guard, "s", 7, first_new - 1, START + 1, START + 6) is None
    assert frame(guard, "s", 7, first_new - 1, START + 1, START + 6) == Reason.REPLAY


# A script of a receiver's life: honest frames (stamped at or before the receiver's clock,
# by a few senders) mixed with floods of one-frame senders stamped up to the skew ahead, and
# replays of anything accepted before. The clock only moves forward.
honest = st.tuples(st.just("honest"), st.integers(0, 3), st.integers(0, 2_000))
flood = st.tuples(st.just("flood"), st.integers(1, 40), st.integers(0, SKEW))
replay = st.tuples(st.just("replay"), st.integers(0, 10_000), st.just(0))
tick = st.tuples(st.just("tick"), st.integers(0, 20_000), st.just(0))
lives = st.lists(st.one_of(honest, honest, flood, replay, tick), max_size=60)


@GUARDS
@settings(max_examples=150, deadline=None)
@given(max_senders=st.integers(1, 6), script=lives)
# h0 evicted by h1, then tracked again from a new frame: its first frame stays refused
@example(
    1, [("honest", 0, 0), ("honest", 1, 0), ("tick", 1, 0), ("honest", 0, 0), ("replay", 0, 0)]
)
def test_no_frame_from_a_sender_not_ahead_of_the_receiver_is_accepted_twice(
    cls, max_senders: int, script: list[tuple]
) -> None:
    guard = cls(64, SKEW, max_senders, START - 1)
    now, flooder, seqs = START, 0, [0, 0, 0, 0]
    accepted: list[tuple] = []
    once: set[tuple] = set()
    for kind, a, b in script:
        if kind == "tick":
            now += a
        elif kind == "honest":
            seqs[a] += 1
            args = (f"h{a}", 1, seqs[a], now - min(b, SKEW))
            if frame(guard, *args, now) is None:
                assert args not in once
                once.add(args)
                accepted.append(args)
        elif kind == "flood":
            for _ in range(a):
                flooder += 1
                frame(guard, f"f{flooder}", 1, 1, now + b, now)
        elif accepted:
            args = accepted[a % len(accepted)]
            assert frame(guard, *args, now) is not None, args
        assert guard.evicted_floor_ms <= now


# Floods of one-frame senders: (how many, stamped how far ahead, the pause after it in ms).
floods = st.lists(
    st.tuples(st.integers(1, 40), st.integers(0, SKEW), st.integers(1, 5_000)),
    min_size=1,
    max_size=6,
)


@GUARDS
@settings(max_examples=100, deadline=None)
@given(max_senders=st.integers(1, 8), floods=floods)
def test_floods_of_future_stamped_senders_never_lock_out_current_ones(
    cls, max_senders: int, floods: list[tuple[int, int, int]]
) -> None:
    guard = cls(64, SKEW, max_senders, START - 1)
    now, seq, flooder = START, 1, 0
    assert frame(guard, "long-lived", 9, seq, now, now) is None
    for size, ahead, pause in floods:
        for _ in range(size):  # the receiver's clock ticks (1 ms) between frames
            flooder += 1
            now += 1
            assert frame(guard, f"f{flooder}", 1, 1, now + ahead, now) is None
        now += pause
        seq += 1
        assert frame(guard, "long-lived", 9, seq, now, now) is None
        now += 1
        assert frame(guard, f"fresh{seq}", 3, 1, now, now) is None
        assert guard.evicted_floor_ms <= now


@GUARDS
@settings(max_examples=100, deadline=None)
@given(max_senders=st.integers(2, 10), long_lived=st.integers(1, 8), floods=floods)
def test_a_long_lived_sender_survives_any_number_of_one_frame_senders(
    cls, max_senders: int, long_lived: int, floods: list[tuple[int, int, int]]
) -> None:
    """Senders that sent two frames or more (as many as the protected segment holds) stay
    tracked through floods of one-frame senders, so their frames in flight across the
    flood's evictions (stamped before the flood, arriving `lag` ms after it) are accepted."""
    guard = cls(64, SKEW, max_senders, START - 1)
    names = [f"long-lived-{i}" for i in range(min(long_lived, max_senders * 4 // 5))]
    now, seq, flooder = START, 2, 0
    for name in names:
        assert frame(guard, name, 9, 1, now, now) is None
        assert frame(guard, name, 9, 2, now, now) is None
    for size, ahead, lag in floods:
        sealed = now  # the long-lived senders stamp their next frames, then the flood
        for _ in range(size):
            flooder += 1
            now += 1
            assert frame(guard, f"f{flooder}", 1, 1, now + ahead, now) is None
        now += lag
        seq += 1
        for name in names:
            assert frame(guard, name, 9, seq, sealed, now) is None, name
        assert {w[0] for w in guard.windows()} >= set(names)
        assert len(guard) <= max_senders
