"""Circuit breaker state transitions, driven by explicit times."""

from __future__ import annotations

import pytest

from netopt import BreakerState, CircuitBreaker


def tripped(now: float = 0.0, half_open_probes: int = 1) -> CircuitBreaker:
    b = CircuitBreaker(failure_threshold=3, open_seconds=10.0, half_open_probes=half_open_probes)
    for _ in range(3):
        assert b.allow(now)
        b.on_failure(now)
    return b


def test_it_opens_after_consecutive_failures_only() -> None:
    b = CircuitBreaker(failure_threshold=3, open_seconds=10.0)
    b.on_failure(0.0)
    b.on_failure(0.0)
    b.on_success()  # resets the count
    b.on_failure(0.0)
    b.on_failure(0.0)
    assert b.state is BreakerState.CLOSED
    b.on_failure(1.0)
    assert b.state is BreakerState.OPEN


def test_open_refuses_until_open_seconds_have_passed() -> None:
    b = tripped(now=0.0)
    assert not b.allow(9.999)
    assert b.state is BreakerState.OPEN
    assert b.allow(10.0)
    assert b.state is BreakerState.HALF_OPEN


def test_half_open_admits_its_probes_only() -> None:
    b = tripped(half_open_probes=2)
    assert b.allow(10.0)
    assert b.allow(10.0)
    assert not b.allow(10.0)


def test_successful_probes_close_it() -> None:
    b = tripped(half_open_probes=2)
    b.allow(10.0)
    b.allow(10.0)
    b.on_success()
    assert b.state is BreakerState.HALF_OPEN
    b.on_success()
    assert b.state is BreakerState.CLOSED
    assert b.allow(10.0)
    b.on_failure(10.0)
    b.on_failure(10.0)
    assert b.state is BreakerState.CLOSED  # the failure count started afresh


def test_a_failed_probe_opens_it_again_for_a_full_period() -> None:
    b = tripped()
    assert b.allow(12.0)
    b.on_failure(12.0)
    assert b.state is BreakerState.OPEN
    assert not b.allow(21.0)
    assert b.allow(22.0)


def test_outcomes_of_calls_made_before_it_opened_are_ignored() -> None:
    b = tripped()
    b.on_success()
    b.on_failure(5.0)
    assert b.state is BreakerState.OPEN
    assert b.allow(10.0)  # the opening time was not pushed back


def test_invalid_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=0)
    with pytest.raises(ValueError):
        CircuitBreaker(open_seconds=-1.0)
