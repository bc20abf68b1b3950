"""The analyser on synthetic signals whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from netopt import MIN_BINS, TrafficClass, analyse
from tests.support.traffic import on_off

N = 256
DT = 0.1
T = np.arange(N) * DT
BIN_HZ = 1.0 / (N * DT)  # one frequency bin of the periodogram


@pytest.mark.parametrize("period", [0.5, 1.0, 2.0, 3.7, 5.0])
def test_a_sinusoidal_rate_is_periodic_and_its_period_found_within_one_bin(period: float) -> None:
    rng = np.random.default_rng(1)
    counts = rng.poisson(10 + 8 * np.sin(2 * np.pi * T / period))
    a = analyse(counts, DT)
    assert a.traffic_class is TrafficClass.PERIODIC
    assert a.period_seconds is not None
    assert abs(1 / a.period_seconds - 1 / period) <= BIN_HZ
    assert a.flatness < 0.7


@pytest.mark.parametrize("period", [0.7, 2.0, 4.0])
def test_periodic_bursts_are_periodic_at_their_fundamental(period: float) -> None:
    """A pulse train's harmonics are as strong as its fundamental; the period is still found."""
    rng = np.random.default_rng(2)
    every = round(period / DT)
    counts = rng.poisson(np.where(np.arange(N) % every == 3, 10.0, 0.2))
    a = analyse(counts, DT)
    assert a.traffic_class is TrafficClass.PERIODIC
    assert a.period_seconds is not None
    assert abs(1 / a.period_seconds - 1 / period) <= BIN_HZ


@pytest.mark.parametrize("seed", range(5))
def test_white_noise_is_flat_and_steady(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for counts in (rng.normal(50, 5, N), rng.poisson(10, N)):
        a = analyse(counts, DT)
        assert a.flatness > 0.8
        assert a.traffic_class is TrafficClass.STEADY
        assert a.period_seconds is None


def test_a_constant_rate_is_steady() -> None:
    a = analyse(np.full(N, 7), DT)
    assert a.traffic_class is TrafficClass.STEADY
    assert a.mean_rate == pytest.approx(70.0)
    assert a.active_rate == pytest.approx(70.0)
    assert a.cv == 0.0
    assert a.dispersion == 0.0


def test_a_fast_stream_within_a_few_percent_of_its_mean_is_steady() -> None:
    """At 1000 msg/s a slow 20 % wander makes the dispersion exceed 2; the cv keeps it steady."""
    rng = np.random.default_rng(3)
    counts = rng.poisson(100 * (1 + 0.2 * np.sin(2 * np.pi * T / 12.8)))  # 2 cycles: too few
    a = analyse(counts, DT)
    assert a.dispersion > 2.0
    assert a.traffic_class is TrafficClass.STEADY


def test_no_messages_is_idle() -> None:
    a = analyse(np.zeros(N), DT)
    assert a.traffic_class is TrafficClass.IDLE
    assert a.mean_rate == 0.0
    assert a.active_rate == 0.0


def test_a_handful_of_messages_is_idle() -> None:
    counts = np.zeros(N)
    counts[[10, 200]] = 1
    a = analyse(counts, DT)
    assert a.traffic_class is TrafficClass.IDLE
    assert a.active_rate == pytest.approx(10.0)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize(("mean_on", "mean_off"), [(5, 5), (5, 20), (10, 10)])
def test_random_on_off_bursts_are_bursty(seed: int, mean_on: float, mean_off: float) -> None:
    a = analyse(on_off(seed, mean_on, mean_off, rate_per_bin=20), DT)
    assert a.traffic_class is TrafficClass.BURSTY
    assert a.active_rate > a.mean_rate


def test_too_short_a_series_is_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        analyse(np.ones(MIN_BINS - 1), DT)
