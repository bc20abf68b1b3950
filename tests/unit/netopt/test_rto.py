"""RFC 6298 retransmission timeouts, checked against hand-computed numbers."""

from __future__ import annotations

import pytest

from netopt import PerKey, RtoEstimator


def test_rfc6298_on_a_hand_computed_sequence() -> None:
    e = RtoEstimator(initial_rto=1.0, min_rto=0.01, max_rto=60.0, granularity=0.001)
    assert e.rto == 1.0  # (2.1) before any sample

    e.observe(0.100)  # (2.2) SRTT = R, RTTVAR = R/2, RTO = SRTT + max(G, 4 RTTVAR)
    assert (e.srtt, e.rttvar, e.rto) == pytest.approx((0.1, 0.05, 0.3))

    e.observe(0.200)  # (2.3) RTTVAR = 3/4 * 0.05 + 1/4 * |0.1 - 0.2|; SRTT = 7/8 0.1 + 1/8 0.2
    assert (e.srtt, e.rttvar, e.rto) == pytest.approx((0.1125, 0.0625, 0.3625))

    e.observe(0.100)  # RTTVAR = 3/4 * 0.0625 + 1/4 * 0.0125; SRTT = 7/8 0.1125 + 1/8 0.1
    assert (e.srtt, e.rttvar, e.rto) == pytest.approx((0.1109375, 0.05, 0.3109375))

    e.backoff()  # (5.5) RTO = 2 RTO
    assert e.rto == pytest.approx(0.621875)
    e.backoff()
    assert e.rto == pytest.approx(1.24375)
    assert e.srtt == pytest.approx(0.1109375)  # backoff leaves the estimates alone

    e.observe(0.100)  # the next sample recomputes RTO from the estimates
    srtt, rttvar = 0.875 * 0.1109375 + 0.0125, 0.75 * 0.05 + 0.25 * 0.0109375
    assert (e.srtt, e.rttvar, e.rto) == pytest.approx((srtt, rttvar, srtt + 4 * rttvar))


def test_clock_granularity_floors_the_variance_term() -> None:
    e = RtoEstimator(min_rto=0.001, granularity=0.05)
    for _ in range(200):
        e.observe(0.2)  # RTTVAR decays towards 0
    assert e.rto == pytest.approx(0.25)


def test_rto_is_clamped_to_its_bounds() -> None:
    e = RtoEstimator(min_rto=0.2, max_rto=5.0)
    e.observe(0.001)
    assert e.rto == 0.2
    for _ in range(10):
        e.backoff()
    assert e.rto == 5.0
    e.observe(30.0)
    assert e.rto == 5.0


def test_invalid_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        RtoEstimator(min_rto=2.0, max_rto=1.0)
    with pytest.raises(ValueError):
        RtoEstimator().observe(-0.1)


def test_per_destination_estimators_are_bounded() -> None:
    table: PerKey[str, RtoEstimator] = PerKey(RtoEstimator, max_keys=2)
    table.get("a").observe(0.1)
    table.get("b").observe(0.2)
    table.get("a")  # "a" is now the most recently used
    table.get("c")
    assert len(table) == 2
    assert "b" not in table
    assert list(table) == ["a", "c"]
    assert table.get("a").srtt == pytest.approx(0.1)
    assert table.get("b").srtt is None  # forgotten, starts afresh
