"""Traffic descriptions: each family's rates, class, period and the policy it implies."""

from __future__ import annotations

import math

import numpy as np
import pytest

from netopt import PolicyLimits, TrafficClass, TrafficSampler, describe_traffic

LIMITS = PolicyLimits(max_messages=32, max_linger_seconds=0.001)  # a bus-like budget


def test_describe_traffic_classifies_and_chooses_a_policy():
    sampler = TrafficSampler(bin_seconds=0.1, bins=128)
    rng = np.random.default_rng(7)
    for b in range(100):
        now = b * 0.1
        for _ in range(rng.poisson(1000)):  # 10 000 msg/s, steady
            sampler.record("busy.lane", 100, now)
        if b % 20 < 3:  # pulses every 2 s
            for _ in range(30):
                sampler.record("pulse.lane", 50, now)
    sampler.record("new.lane", 10, 9.95)
    report = {t.family: t for t in describe_traffic(sampler, 10.0, LIMITS)}
    busy, pulse, new = report["busy.lane"], report["pulse.lane"], report["new.lane"]
    assert busy.traffic_class is TrafficClass.STEADY and 9500 < busy.rate < 10500
    assert busy.policy.linger_seconds > 0
    # 1 ms of budget gathers ~10 messages at 10 000 msg/s: the batch is sized to that
    assert busy.policy.max_messages == math.ceil(busy.rate * LIMITS.max_linger_seconds)
    assert busy.policy.linger_seconds == pytest.approx(
        min(LIMITS.max_linger_seconds, busy.policy.max_messages / busy.rate)
    )
    assert pulse.traffic_class is TrafficClass.PERIODIC
    assert pulse.period_seconds == pytest.approx(2.0, rel=0.1)
    assert new.traffic_class is None and new.policy.linger_seconds == 0
    assert next(iter(report)) == "busy.lane"  # busiest first
    assert busy.as_dict()["policy"]["linger_ms"] == busy.policy.linger_seconds * 1000
