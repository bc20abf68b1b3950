"""Full-jitter exponential backoff: bounds, cap, reproducibility."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netopt import Backoff


@given(
    st.floats(0.0, 1.0),
    st.floats(1.0, 100.0),
    st.integers(0, 10_000),
    st.integers(0, 2**32),
)
def test_each_delay_lies_in_zero_to_the_capped_exponential(
    base: float, cap: float, retry: int, seed: int
) -> None:
    b = Backoff(base_seconds=base, cap_seconds=cap)
    ceiling = min(cap, base * 2.0 ** min(retry, 64))
    assert b.ceiling(retry) == ceiling
    assert 0.0 <= b.delay(retry, random.Random(seed)) <= ceiling


def test_ceilings_double_then_stay_at_the_cap() -> None:
    b = Backoff(base_seconds=0.1, cap_seconds=1.0)
    assert [b.ceiling(n) for n in range(6)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


def test_the_schedule_is_reproducible_with_a_seeded_rng() -> None:
    b = Backoff(base_seconds=0.05, cap_seconds=2.0, max_retries=5)
    first = b.schedule(random.Random(42))
    assert first == b.schedule(random.Random(42))
    assert len(first) == 5
    assert all(0.0 <= d <= b.ceiling(n) for n, d in enumerate(first))


def test_jitter_spans_the_whole_interval() -> None:
    b = Backoff(base_seconds=1.0, cap_seconds=1.0)
    rng = random.Random(7)
    delays = [b.delay(0, rng) for _ in range(2000)]
    assert min(delays) < 0.05
    assert max(delays) > 0.95


def test_invalid_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        Backoff(base_seconds=2.0, cap_seconds=1.0)
    with pytest.raises(ValueError):
        Backoff(max_retries=-1)
