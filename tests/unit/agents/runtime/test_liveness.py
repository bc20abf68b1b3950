"""The phi-accrual detector: silence grows phi, heartbeats bring a member back, a new
observer gives every member one timeout, each member's own interval counts."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.runtime.liveness import Liveness, LivenessDetector, PhiSettings, phi


@given(
    st.floats(0, 100),
    st.floats(0, 100),
    st.floats(0.1, 50),
    st.floats(0.01, 10),
)
def test_phi_is_monotonic_in_silence_and_never_negative(
    a: float, b: float, mean: float, std: float
) -> None:
    lo, hi = sorted((a, b))
    assert 0 <= phi(lo, mean, std) <= phi(hi, mean, std)
    assert math.isfinite(phi(hi, mean, std))


def test_phi_at_the_mean_is_log10_2() -> None:
    # half the intervals are longer than the mean: P = 1/2, phi = log10(2)
    assert phi(1.0, 1.0, 0.1) == pytest.approx(math.log10(2))


def test_silence_moves_alive_to_suspect_to_dead_and_a_beat_revives() -> None:
    d = LivenessDetector(interval=1.0)
    t = 0.0
    for _ in range(20):  # steady beats, one a second
        d.heartbeat("a", t)
        t += 1.0
    last = t - 1.0
    assert d.state("a", last + 1.0) is Liveness.ALIVE
    assert d.state("a", last + 2.5) is Liveness.ALIVE  # inside the acceptable pause
    states = [d.state("a", last + s / 10) for s in range(0, 100)]
    first_suspect = states.index(Liveness.SUSPECT)
    first_dead = states.index(Liveness.DEAD)
    assert 0 < first_suspect < first_dead
    assert all(s is Liveness.DEAD for s in states[first_dead:])  # stays dead while silent
    assert first_dead / 10 < 6.0  # dead within a few intervals
    d.heartbeat("a", last + 10.0)
    assert d.state("a", last + 10.1) is Liveness.ALIVE


def test_a_new_observer_gives_known_members_one_timeout() -> None:
    d = LivenessDetector(interval=0.5)
    d.track("old", now=100.0)
    assert d.state("old", 100.5) is Liveness.ALIVE
    assert d.state("old", 110.0) is Liveness.DEAD
    assert d.last_heartbeat("old") == 100.0
    d.track("old", now=105.0)  # tracking again does not reset the clock
    assert d.last_heartbeat("old") == 100.0


def test_each_member_is_judged_by_its_own_interval() -> None:
    d = LivenessDetector(interval=1.0)
    for i in range(10):
        d.heartbeat("fast", i * 0.1, interval=0.1)
        d.heartbeat("slow", i * 5.0, interval=5.0)
    assert d.state("fast", 0.9 + 3.0) is Liveness.DEAD
    assert d.state("slow", 45.0 + 3.0) is Liveness.ALIVE


def test_unknown_and_forgotten_members() -> None:
    d = LivenessDetector()
    assert d.phi("ghost", 1e9) == 0.0
    d.heartbeat("a", 0.0)
    assert "a" in d
    d.forget("a")
    assert "a" not in d and d.last_heartbeat("a") is None


def test_old_heartbeats_do_not_move_time_back() -> None:
    d = LivenessDetector(interval=1.0)
    d.heartbeat("a", 10.0)
    d.heartbeat("a", 5.0)
    assert d.last_heartbeat("a") == 10.0


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(suspect_phi=8, dead_phi=3),
        dict(window=1),
        dict(pause_intervals=-1),
        dict(min_std_ratio=0),
    ],
)
def test_bad_settings_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        PhiSettings(**kwargs)
    with pytest.raises(ValueError):
        LivenessDetector(interval=0)
