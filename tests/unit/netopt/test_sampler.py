"""TrafficSampler: completed bins only, ring wrap, zeroed gaps, bounded families, cheap record."""

from __future__ import annotations

import time

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from netopt import TrafficSampler


def test_series_holds_completed_bins_only() -> None:
    s = TrafficSampler(bin_seconds=0.1, bins=8)
    for _ in range(3):
        s.record("f", 10, now=0.05)
    s.record("f", 7, now=0.15)
    s.record("f", 7, now=0.16)
    assert s.series("f", now=0.15).tolist() == [3]
    assert s.series("f", now=0.25).tolist() == [3, 2]
    assert s.bytes_series("f", now=0.25).tolist() == [30, 14]


def test_gaps_read_as_zero_bins() -> None:
    s = TrafficSampler(bin_seconds=0.1, bins=16)
    s.record("f", 1, now=0.0)
    s.record("f", 1, now=0.55)
    assert s.series("f", now=0.65).tolist() == [1, 0, 0, 0, 0, 1]


def test_ring_keeps_the_newest_bins() -> None:
    s = TrafficSampler(bin_seconds=1.0, bins=8)
    for b in range(20):
        for _ in range(b):
            s.record("f", 1, now=b + 0.5)
    assert s.series("f", now=20.0).tolist() == list(range(12, 20))


def test_a_silence_longer_than_the_ring_clears_it() -> None:
    s = TrafficSampler(bin_seconds=1.0, bins=4)
    for b in range(10):
        s.record("f", 1, now=float(b))
    s.record("f", 1, now=100.0)
    assert s.series("f", now=101.0).tolist() == [0, 0, 0, 1]


def test_unknown_family_has_an_empty_series() -> None:
    assert TrafficSampler().series("nobody", now=5.0).size == 0


def test_a_late_timestamp_counts_in_the_open_bin() -> None:
    s = TrafficSampler(bin_seconds=1.0, bins=4)
    s.record("f", 1, now=2.5)
    s.record("f", 1, now=1.9)
    assert s.series("f", now=3.0).tolist() == [2]


def test_families_are_bounded_least_recently_active_first_out() -> None:
    s = TrafficSampler(bin_seconds=0.1, bins=4, max_families=2)
    s.record("a", 1, now=0.0)
    s.record("b", 1, now=0.0)
    s.record("a", 1, now=0.2)  # a new bin for "a": it becomes the most recently active
    s.record("c", 1, now=0.3)
    assert s.families() == ["a", "c"]


events = st.lists(
    st.tuples(st.sampled_from(["x", "y", "z"]), st.integers(0, 5000), st.floats(0.0, 0.35)),
    max_size=200,
)


@given(events, st.floats(0.0, 2.0))
def test_series_matches_a_brute_force_count(evs: list[tuple[str, int, float]], tail: float) -> None:
    bins, per_second = 16, 10.0
    s = TrafficSampler(bin_seconds=0.1, bins=bins)
    now = 0.0
    counts: dict[str, dict[int, int]] = {}
    nbytes: dict[str, dict[int, int]] = {}
    for family, size, dt in evs:
        now += dt
        s.record(family, size, now)
        b = int(now * per_second)
        counts.setdefault(family, {})[b] = counts.get(family, {}).get(b, 0) + 1
        nbytes.setdefault(family, {})[b] = nbytes.get(family, {}).get(b, 0) + size
    now += tail
    end = int(now * per_second)
    for family, by_bin in counts.items():
        first = min(by_bin)
        window = range(max(first, end - bins), end)
        assert s.series(family, now).tolist() == [by_bin.get(b, 0) for b in window]
        assert s.bytes_series(family, now).tolist() == [nbytes[family].get(b, 0) for b in window]


def test_record_is_cheap() -> None:
    """A few microseconds at most per message; the bound here is loose to stay robust."""
    s = TrafficSampler()
    n = 100_000
    start = time.perf_counter()
    for i in range(n):
        s.record("agents.tasks", 200, i * 1e-4)  # 10 000 msg/s: a bin change every 1000
    per_call = (time.perf_counter() - start) / n
    assert per_call < 10e-6, f"record took {per_call * 1e6:.2f} us per call"
    assert int(np.sum(s.series("agents.tasks", n * 1e-4))) == n
