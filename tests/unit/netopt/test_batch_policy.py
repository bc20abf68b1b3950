"""Batch policies: natural batching under light load, linger only when it fills a batch."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from netopt import (
    NO_BATCHING,
    AdaptiveBatching,
    Analysis,
    BatchPolicy,
    FixedBatching,
    PolicyLimits,
    TrafficClass,
    TrafficSampler,
    analyse,
    choose_policy,
)

LIMITS = PolicyLimits()


def analysis(cls: TrafficClass, mean_rate: float, active_rate: float | None = None) -> Analysis:
    active = mean_rate if active_rate is None else active_rate
    return Analysis(cls, mean_rate, active, 0.5, 1.0, 0.9, 0.0, None)


rates = st.floats(0.0, 1e7, allow_nan=False)
analyses = st.builds(
    lambda cls, mean, extra: analysis(cls, mean, mean * extra),
    st.sampled_from(TrafficClass),
    rates,
    st.floats(1.0, 50.0),
)


@given(analyses)
def test_a_policy_stays_within_its_limits(a: Analysis) -> None:
    p = choose_policy(a, LIMITS)
    assert 1 <= p.max_messages <= LIMITS.max_messages
    assert p.max_bytes == LIMITS.max_bytes
    assert 0.0 <= p.linger_seconds <= LIMITS.max_linger_seconds


@given(analyses)
def test_it_never_lingers_unless_the_wait_gathers_min_gain_messages(a: Analysis) -> None:
    rate = a.mean_rate if a.traffic_class is TrafficClass.STEADY else a.active_rate
    p = choose_policy(a, LIMITS)
    if a.traffic_class is TrafficClass.IDLE or rate * LIMITS.max_linger_seconds < LIMITS.min_gain:
        assert p.linger_seconds == 0.0
    else:
        assert p.linger_seconds > 0.0
        assert p.max_messages >= LIMITS.min_gain


@pytest.mark.parametrize("rate", [0.0, 1.0, 50.0, 500.0, 799.0])
def test_light_traffic_gets_natural_batching(rate: float) -> None:
    for cls in TrafficClass:
        assert choose_policy(analysis(cls, rate), LIMITS) == LIMITS.natural()


def test_idle_never_lingers_whatever_its_burst_rate() -> None:
    assert choose_policy(analysis(TrafficClass.IDLE, 0.1, 1e6), LIMITS).linger_seconds == 0.0


def test_steady_heavy_traffic_lingers_to_fill_a_batch() -> None:
    p = choose_policy(analysis(TrafficClass.STEADY, 10_000.0), LIMITS)
    assert p == BatchPolicy(50, LIMITS.max_bytes, 0.005)


def test_very_heavy_traffic_is_capped_in_size_and_lingers_less() -> None:
    p = choose_policy(analysis(TrafficClass.STEADY, 1_000_000.0), LIMITS)
    assert p.max_messages == LIMITS.max_messages
    assert p.linger_seconds == pytest.approx(256 / 1_000_000)


def test_bursty_traffic_is_sized_by_its_rate_inside_bursts() -> None:
    calm_on_average = analysis(TrafficClass.BURSTY, 400.0, active_rate=4000.0)
    p = choose_policy(calm_on_average, LIMITS)
    assert p.max_messages == 20
    assert p.linger_seconds == pytest.approx(0.005)


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        BatchPolicy(0, 1, 0.0)
    with pytest.raises(ValueError):
        BatchPolicy(1, 1, -1.0)


def test_fixed_batching_never_changes() -> None:
    fixed = FixedBatching(BatchPolicy(32, 65536, 0.002))
    assert fixed.policy_for("any") == BatchPolicy(32, 65536, 0.002)
    assert fixed.maybe_update(100.0) == {}
    assert FixedBatching().policy_for("any") == NO_BATCHING


def feed(sampler: TrafficSampler, family: str, rate: float, start: float, end: float) -> None:
    """Evenly spaced messages of 100 bytes at `rate` per second over [start, end)."""
    for t in np.arange(start, end, 1.0 / rate):
        sampler.record(family, 100, float(t))


def test_adaptive_batching_tunes_each_family_from_its_traffic() -> None:
    sampler = TrafficSampler(bin_seconds=0.1, bins=256)
    adaptive = AdaptiveBatching(sampler, interval_seconds=1.0, min_bins=64)
    feed(sampler, "busy", 2000.0, 0.0, 5.0)
    feed(sampler, "quiet", 5.0, 0.0, 5.0)
    assert adaptive.maybe_update(5.0) == {}  # 50 bins of history: too early to judge
    assert adaptive.policy_for("busy") == LIMITS.natural()

    feed(sampler, "busy", 2000.0, 5.0, 10.0)
    feed(sampler, "quiet", 5.0, 5.0, 10.0)
    changed = adaptive.maybe_update(10.0)
    assert changed == {"busy": BatchPolicy(10, LIMITS.max_bytes, 0.005)}
    assert adaptive.policy_for("busy") == BatchPolicy(10, LIMITS.max_bytes, 0.005)
    assert adaptive.policy_for("quiet") == LIMITS.natural()
    busy = adaptive.analysis_for("busy")
    assert busy is not None and busy.traffic_class is TrafficClass.STEADY

    assert adaptive.maybe_update(10.5) == {}  # not due yet
    assert adaptive.maybe_update(11.0) == {}  # due, nothing changed

    # "busy" falls silent: after the window empties it is idle and back to natural batching.
    changed = adaptive.maybe_update(10.0 + 256 * 0.1 + 0.1)
    assert changed == {"busy": LIMITS.natural()}


def test_adaptive_batching_forgets_families_the_sampler_forgot() -> None:
    sampler = TrafficSampler(bin_seconds=0.1, bins=64, max_families=1)
    adaptive = AdaptiveBatching(sampler, min_bins=16)
    feed(sampler, "a", 2000.0, 0.0, 2.0)
    adaptive.maybe_update(2.0)
    assert adaptive.analysis_for("a") is not None
    sampler.record("b", 1, 2.0)
    adaptive.maybe_update(3.0)
    assert adaptive.analysis_for("a") is None


def test_one_evaluation_costs_well_under_one_percent_of_a_core_per_second() -> None:
    """Re-evaluating once a second, 1 % of a core is 10 ms per evaluation."""
    counts = np.random.default_rng(0).poisson(10, 256)
    rounds = 200
    start = time.perf_counter()
    for _ in range(rounds):
        choose_policy(analyse(counts, 0.1), LIMITS)
    per_evaluation = (time.perf_counter() - start) / rounds
    assert per_evaluation < 0.010 / 2, f"{per_evaluation * 1e3:.2f} ms per evaluation"
    assert math.isfinite(per_evaluation)


def test_a_family_too_slow_to_linger_is_analysed_once_in_slow_every_evaluations() -> None:
    """Its policy is natural batching whatever the analysis says, so the spectrum is not
    worked out every second; its rates are still refreshed, and a family that speeds up is
    analysed at its next evaluation."""
    sampler = TrafficSampler(bin_seconds=0.1, bins=256)
    adaptive = AdaptiveBatching(sampler, interval_seconds=1.0, min_bins=64, slow_every=5)
    feed(sampler, "slow", 50.0, 0.0, 10.0)
    adaptive.maybe_update(10.0)
    first = adaptive.analysis_for("slow")
    assert adaptive.analysed == 1 and first is not None
    for k in range(1, 5):  # the rate doubles, still far too slow to linger for
        feed(sampler, "slow", 100.0, 9.0 + k, 10.0 + k)
        assert adaptive.maybe_update(10.0 + k) == {}
        assert adaptive.analysed == 1
        kept = adaptive.analysis_for("slow")
        assert kept is not None and kept.traffic_class is first.traffic_class
        fresh = analyse(sampler.series("slow", 10.0 + k), 0.1)
        assert kept.mean_rate == pytest.approx(fresh.mean_rate)
        assert kept.mean_rate > first.mean_rate
        assert kept.active_rate == pytest.approx(fresh.active_rate)
    feed(sampler, "slow", 100.0, 14.0, 15.0)
    adaptive.maybe_update(15.0)  # the fifth evaluation: analysed again
    assert adaptive.analysed == 2
    assert adaptive.policy_for("slow") == LIMITS.natural()

    feed(sampler, "slow", 100_000.0, 15.0, 16.0)  # now fast enough to linger for
    changed = adaptive.maybe_update(16.0)
    assert adaptive.analysed == 3
    assert changed["slow"].linger_seconds > 0


def test_slow_every_must_be_positive() -> None:
    with pytest.raises(ValueError, match="slow_every"):
        AdaptiveBatching(TrafficSampler(), slow_every=0)


def test_without_the_spectrum_slow_families_get_natural_batching_and_no_analysis() -> None:
    """An agent's traffic never needs the analyser: `needs_spectrum` says so, and an
    update without it puts natural batching in force with no analysis. A family that
    could linger makes `needs_spectrum` true; until the analyser runs it keeps its policy."""
    sampler = TrafficSampler(bin_seconds=0.1, bins=256)
    adaptive = AdaptiveBatching(sampler, interval_seconds=1.0, min_bins=64)
    feed(sampler, "slow", 50.0, 0.0, 10.0)
    assert not adaptive.needs_spectrum(10.0)
    assert adaptive.maybe_update(10.0, spectral=False) == {}
    assert adaptive.in_force() == {"slow": (LIMITS.natural(), None)}
    assert adaptive.analysed == 0

    feed(sampler, "fast", 20_000.0, 4.0, 11.0)
    assert adaptive.needs_spectrum(11.0)
    assert adaptive.maybe_update(11.0, spectral=False) == {}
    assert adaptive.policy_for("fast") == LIMITS.natural()
    changed = adaptive.maybe_update(12.0)  # the analyser now runs, for both
    assert changed["fast"].linger_seconds > 0 and "slow" not in changed
    assert adaptive.analysed == 2 and adaptive.analysis_for("slow") is not None
