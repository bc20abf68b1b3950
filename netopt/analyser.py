"""Classify a family's traffic (idle, steady, periodic, bursty) from its per-bin counts.

Pipeline (docs/NETOPT.md has the reasoning and the measured thresholds): one linear
detrend; a Hamming-windowed periodogram whose peaks are period candidates, each confirmed in
the time domain by the autocorrelation; spectral flatness from a Welch estimate; rate and
dispersion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = ["MIN_BINS", "Analysis", "ClassThresholds", "TrafficClass", "analyse"]

MIN_BINS = 16
"""The shortest series `analyse` accepts: fewer bins carry no usable spectrum."""

_WELCH_SEGMENT = 64


class TrafficClass(StrEnum):
    """What a family's traffic looks like over the analysed window."""

    IDLE = "idle"
    STEADY = "steady"
    PERIODIC = "periodic"
    BURSTY = "bursty"


@dataclass(frozen=True, slots=True)
class ClassThresholds:
    """Classification thresholds; the defaults are justified in docs/NETOPT.md."""

    idle_max_rate: float = 0.2
    """At or below this many messages per second the family is idle."""
    steady_max_dispersion: float = 2.0
    """Variance/mean of the detrended counts; 1 for random (Poisson) arrivals."""
    steady_max_cv: float = 0.25
    """Coefficient of variation under which a fast stream counts as steady anyway."""
    periodic_min_score: float = 0.6
    """Minimum periodicity score (autocorrelation at the period minus that at half of it)."""
    min_cycles: float = 3.0
    """A period must repeat at least this many times in the window to be reported."""

    def __post_init__(self) -> None:
        if self.min_cycles < 1.0:
            raise ValueError(f"min_cycles must be >= 1, got {self.min_cycles}")


@dataclass(frozen=True, slots=True)
class Analysis:
    """The features of one series and the class derived from them."""

    traffic_class: TrafficClass
    mean_rate: float
    """Messages per second over the window."""
    active_rate: float
    """Messages per second over the bins that saw any traffic (the rate inside bursts)."""
    cv: float
    """Standard deviation over mean of the detrended counts (0 when there are none)."""
    dispersion: float
    """Variance over mean of the detrended counts (index of dispersion)."""
    flatness: float
    """Geometric over arithmetic mean of the power spectrum: 1 is white, near 0 a pure tone."""
    periodicity: float
    """Score of the best period candidate; at least `periodic_min_score` when PERIODIC."""
    period_seconds: float | None
    """The dominant period when PERIODIC, else None."""


def analyse(
    counts: np.ndarray, bin_seconds: float, thresholds: ClassThresholds = ClassThresholds()
) -> Analysis:
    """Analyse message counts per bin (oldest first, at least MIN_BINS of them)."""
    # here, not at the top: numpy and scipy.signal take most of a second to import, and
    # the types above are all that a bus with batching off needs of this module
    import numpy as np
    from scipy import signal

    x = np.asarray(counts, dtype=np.float64)
    n = x.size
    if n < MIN_BINS:
        raise ValueError(f"need at least {MIN_BINS} bins to analyse, got {n}")
    mean = float(x.mean())
    mean_rate = mean / bin_seconds
    active = x[x > 0]
    active_rate = float(active.mean()) / bin_seconds if active.size else 0.0
    y = signal.detrend(x, type="linear")
    variance = float(np.dot(y, y)) / n
    if variance <= 1e-12 * mean * mean:
        variance = 0.0  # a constant series; what is left is rounding noise from the detrend
    dispersion = variance / mean if mean > 0 else 0.0
    cv = math.sqrt(variance) / mean if mean > 0 else 0.0
    if mean_rate <= thresholds.idle_max_rate:
        return Analysis(TrafficClass.IDLE, mean_rate, active_rate, cv, dispersion, 1.0, 0.0, None)

    fs = 1.0 / bin_seconds
    if variance > 0.0:
        flatness = _flatness(y, fs)
        periodicity, period = _best_period(y, variance, fs, thresholds.min_cycles)
    else:
        flatness, periodicity, period = 1.0, 0.0, None  # no fluctuation: nothing stands out

    if periodicity >= thresholds.periodic_min_score:
        cls = TrafficClass.PERIODIC
    elif dispersion <= thresholds.steady_max_dispersion or cv <= thresholds.steady_max_cv:
        cls = TrafficClass.STEADY
    else:
        cls = TrafficClass.BURSTY
    return Analysis(
        traffic_class=cls,
        mean_rate=mean_rate,
        active_rate=active_rate,
        cv=cv,
        dispersion=dispersion,
        flatness=flatness,
        periodicity=periodicity,
        period_seconds=period if cls is TrafficClass.PERIODIC else None,
    )


def _flatness(y: np.ndarray, fs: float) -> float:
    """Spectral flatness of the detrended series' Welch (segment-averaged) spectrum, DC excluded.

    A raw periodogram's bins scatter like chi-squared with 2 degrees of freedom, which caps
    the flatness of white noise near exp(-Euler gamma) = 0.56; averaging segments lifts it
    to about 0.9, so the number means what it says.
    """
    import numpy as np
    from scipy import signal

    _, power = signal.welch(
        y, fs, window="hamming", nperseg=min(_WELCH_SEGMENT, y.size), detrend="constant"
    )
    power = power[1:]
    arithmetic = float(power.mean())
    geometric = math.exp(float(np.mean(np.log(np.maximum(power, arithmetic * 1e-12)))))
    return geometric / arithmetic


def _best_period(
    y: np.ndarray, variance: float, fs: float, min_cycles: float
) -> tuple[float, float | None]:
    """The best (score, period in seconds) among the spectral peaks, or (0.0, None).

    Spectral peaks are only candidates: random on/off traffic has a red spectrum whose low
    bins tower over the rest just as a true period does. A candidate period P is scored in
    the time domain as r(P) - max(r(P/2), 0), r being the autocorrelation: a periodic stream
    repeats itself at P but not at P/2; a slowly drifting one is as alike at P/2 as at P.
    Candidates include peaks down to a tenth of the highest, because the harmonics of a
    narrow pulse train are as strong as its fundamental.
    """
    import numpy as np
    from scipy import signal

    n = y.size
    freqs, power = signal.periodogram(y, fs, window="hamming", detrend=False)
    df = freqs[1]
    # Start one bin below the lowest admissible one: find_peaks never reports an edge sample.
    start = max(0, math.ceil(min_cycles) - 1)
    peaks, _ = signal.find_peaks(power[start:])
    peaks = peaks + start
    peaks = peaks[freqs[peaks] * n / fs >= min_cycles]
    if peaks.size == 0:
        return 0.0, None
    peaks = peaks[power[peaks] >= 0.1 * power[peaks].max()]

    lags = np.arange(n)
    acf = signal.correlate(y, y, mode="full")[n - 1 :] / (n - lags) / variance
    max_lag = int(n / min_cycles)
    best_score, best_period = 0.0, None
    for k in peaks:
        f = freqs[k]
        lo = max(2, math.floor(fs / (f + df / 2)))
        hi = min(max_lag, math.ceil(fs / (f - df / 2)))
        if lo > hi:
            continue
        lag = lo + int(np.argmax(acf[lo : hi + 1]))
        half = 0.5 * (acf[lag // 2] + acf[(lag + 1) // 2])
        score = float(acf[lag] - max(half, 0.0))
        if score > best_score:
            best_score, best_period = score, float(1.0 / f)
    return best_score, best_period
