"""The compiled replay window against the Python reference: over random sequences of
checks, commits and batch admissions, both give the same answers and end with the same
windows, LRU order and eviction floor. The compiled guard is taken from the extension
directly (as test_signing does), so these run under AMCP_NO_SPEEDUPS=1 too; where the
extension is not built, the reference is compared with itself."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amcp.replay import MAX_WINDOW, PyReplayGuard, ReplayGuard
from amcp.speedups import compiled

BUILT = importlib.util.find_spec("amcp._speedups") is not None
if BUILT:
    from amcp._speedups import ReplayGuard as CReplayGuard
else:
    CReplayGuard = PyReplayGuard

NOW = 1_800_000_000_000
U64 = (1 << 64) - 1

senders = st.sampled_from(["a", "b", "c", "d", "e", "\u00e9t\u00e9"])
epochs = st.sampled_from([0, 1, 2, 7, U64])
# Seqs near a few bases, so windows move by small and large steps, wrap word boundaries
# and reach the top of the 64-bit range.
seqs = st.one_of(
    st.integers(0, 300),
    st.integers(0, 5000),
    st.integers(U64 - 300, U64),
    st.sampled_from([63, 64, 65, 127, 128, 1 << 63, U64]),
)
times = st.one_of(st.integers(NOW - 40_000, NOW + 40_000), st.sampled_from([0, 1, U64]))
nows = st.one_of(st.integers(NOW - 1000, NOW + 1000), st.sampled_from([-5, 0, (1 << 63) - 1]))

checks = st.tuples(st.just("check"), senders, epochs, seqs, times, nows)
commits = st.tuples(st.just("commit"), senders, epochs, seqs, times, nows)
admits = st.tuples(st.just("admit"), senders, epochs, st.lists(seqs, max_size=12), times, nows)
# A frame through an Opener: check, and commit only when it passed.
frames = st.tuples(st.just("frame"), senders, epochs, seqs, times, nows)
# One-frame senders (names f<first>..): they churn the probationary segment.
floods = st.tuples(st.just("flood"), st.integers(0, 20), st.integers(1, 6), times, nows)
ops = st.lists(st.one_of(frames, frames, checks, commits, admits, floods), max_size=120)


def run(guard: object, op: tuple) -> object:
    name, *args = op
    if name == "frame":
        sender, epoch, seq, ts, now = args
        reason = guard.check(sender, epoch, seq, ts, now)
        if reason is None:
            guard.commit(sender, epoch, seq, ts, now)
        return reason
    if name == "flood":
        first, n, ts, now = args
        return [run(guard, ("frame", f"f{first + i}", 1, 1, ts, now)) for i in range(n)]
    return getattr(guard, name)(*args)


def state(guard: object) -> tuple:
    return guard.windows(), guard.evicted_floor_ms, len(guard)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([32, 33, 64, 100, 1024]),
    st.sampled_from([0, 30_000]),
    st.integers(1, 6),
    st.one_of(st.just(0), times),
    ops,
)
def test_compiled_and_reference_guards_agree(
    window: int, skew_ms: int, max_senders: int, floor_ms: int, script: list[tuple]
) -> None:
    fast = CReplayGuard(window, skew_ms, max_senders, floor_ms)
    ref = PyReplayGuard(window, skew_ms, max_senders, floor_ms)
    for op in script:
        assert run(fast, op) == run(ref, op), op
        assert state(fast) == state(ref), op


# The table alone: many commits from a pool of senders larger than the table, so senders
# are promoted, demoted and evicted in every order the segmented LRU allows.
table_commits = st.tuples(st.just("commit"), st.sampled_from("abcdefghij"), st.integers(0, 40))
table_ops = st.lists(
    st.one_of(
        *[table_commits] * 4, st.tuples(st.just("flood"), st.integers(0, 20), st.integers(1, 8))
    ),
    min_size=40,
    max_size=300,
)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 10), table_ops)
def test_compiled_and_reference_tables_agree(max_senders: int, script: list[tuple]) -> None:
    fast = CReplayGuard(64, 30_000, max_senders)
    ref = PyReplayGuard(64, 30_000, max_senders)
    for i, (name, arg, n) in enumerate(script):
        ts, now = NOW + n * 1000, NOW + i  # the floor: min(newest ts of the evicted, now)
        for guard in (fast, ref):
            if name == "commit":
                guard.commit(arg, 1, i, ts, now)
            else:
                run(guard, ("flood", arg, n, ts, now))
        assert state(fast) == state(ref), (i, name, arg, n)


def test_windows_report_what_was_seen() -> None:
    for guard in (CReplayGuard(window=64), PyReplayGuard(window=64)):
        for seq in (10, 12, 75):
            guard.commit("s", 1, seq, NOW, NOW)
        # top 75: 75 is bit 0; 12 is 63 below it (bit 63); 10 fell out of the window.
        assert guard.windows() == [("s", 1, 75, 1 | 1 << 63, NOW)]


def test_windows_order_is_probationary_then_protected_each_least_recent_first() -> None:
    """The table is a segmented LRU: a second commit promotes a sender to the protected
    segment (at most 4/5 of max_senders, 2 of 3 here), whose least recent entry is then
    demoted to the probationary segment; eviction takes the probationary least recent."""
    for guard in (CReplayGuard(64, 30_000, 3), PyReplayGuard(64, 30_000, 3)):
        for seq, sender in enumerate("aabbc", 1):
            guard.commit(sender, 1, seq, NOW + seq, NOW)
        assert [w[0] for w in guard.windows()] == ["c", "a", "b"]
        guard.commit("c", 1, 6, NOW + 6, NOW)  # promoted: a, the protected LRU, demoted
        assert [w[0] for w in guard.windows()] == ["a", "b", "c"]
        guard.commit("d", 1, 7, NOW + 7, NOW + 10)
        assert [w[0] for w in guard.windows()] == ["d", "b", "c"]
        assert guard.evicted_floor_ms == NOW + 2  # a's newest, under the clock
        guard.commit("d", 1, 8, NOW + 8, NOW + 10)  # promoted: b demoted, then c and d
        guard.commit("e", 1, 9, NOW + 9, NOW + 10)  # b, the probationary LRU, evicted
        assert [w[0] for w in guard.windows()] == ["e", "c", "d"]
        assert guard.evicted_floor_ms == NOW + 4


def test_both_refuse_the_same_configurations() -> None:
    for bad in (dict(window=31), dict(window=MAX_WINDOW + 1), dict(max_senders=0)):
        for cls in (CReplayGuard, PyReplayGuard):
            with pytest.raises(ValueError):
                cls(**bad)
    for cls in (CReplayGuard, PyReplayGuard):
        with pytest.raises(ValueError):
            cls(skew_ms=-1)
        with pytest.raises(ValueError):
            cls(floor_ms=-1)
        with pytest.raises(ValueError):
            cls(floor_ms=1 << 64)
        assert cls(window=MAX_WINDOW).window == MAX_WINDOW


def test_compiled_guard_is_in_use_when_built_and_env_forces_the_reference() -> None:
    built = compiled("ReplayGuard") is not None
    assert (ReplayGuard is not PyReplayGuard) == built
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import amcp.replay as r; print(r.ReplayGuard.__name__, "
            "r.ReplayGuard is r.PyReplayGuard)",
        ],
        env=dict(os.environ, AMCP_NO_SPEEDUPS="1"),
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["PyReplayGuard", "True"]


def test_wire_values_only_in_the_compiled_guard() -> None:
    """The compiled guard takes what a frame can carry (a str sender, unsigned 64-bit
    numbers) and raises for anything else, where the reference computes on regardless."""
    assert PyReplayGuard().check("s", 1, 1, NOW, NOW) is None
    if CReplayGuard is PyReplayGuard:
        return
    guard = CReplayGuard()
    with pytest.raises(TypeError):
        guard.check(b"sender", 1, 1, NOW, NOW)
    with pytest.raises(OverflowError):
        guard.commit("s", -1, 1, NOW, NOW)
    with pytest.raises(OverflowError):
        guard.commit("s", 1, 1 << 64, NOW, NOW)
    with pytest.raises(TypeError):
        guard.admit("s", 1, 5, NOW, NOW)
    with pytest.raises(TypeError):
        guard.commit("s", 1, 1, NOW)  # now_ms is required: it caps the eviction floor
    assert len(guard) == 0
