"""Synthetic traffic for the netopt tests: message counts per bin whose class is known."""

from __future__ import annotations

import numpy as np


def on_off(
    seed: int, mean_on: float, mean_off: float, rate_per_bin: float, bins: int = 256
) -> np.ndarray:
    """Random on/off traffic: exponential on and off durations (in bins), Poisson when on."""
    rng = np.random.default_rng(seed)
    x = np.zeros(bins)
    i, on = 0, bool(rng.random() < 0.5)
    while i < bins:
        d = max(1, round(rng.exponential(mean_on if on else mean_off)))
        if on:
            x[i : i + d] = rng.poisson(rate_per_bin, size=x[i : i + d].size)
        i, on = i + d, not on
    return x
