"""What the analyser makes of each subject family's traffic: a plain description (rates,
class, period, the policy it implies) for status reports, plots and the S4 role."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from netopt.analyser import MIN_BINS, Analysis, TrafficClass, analyse
from netopt.batch_policy import BatchPolicy, PolicyLimits, choose_policy
from netopt.sampler import TrafficSampler

if TYPE_CHECKING:  # numpy is imported by the sampler when it runs
    import numpy as np

__all__ = ["FamilyTraffic", "describe_traffic"]


@dataclass(frozen=True, slots=True)
class FamilyTraffic:
    """What the analyser makes of one subject family's traffic."""

    family: str
    messages: int
    bytes: int
    rate: float
    """Messages per second over the observed window."""
    active_rate: float
    traffic_class: TrafficClass | None
    """None when fewer than MIN_BINS bins were observed (too short to classify)."""
    period_seconds: float | None
    flatness: float | None
    policy: BatchPolicy
    """The batching an adaptive bus would put in force for this traffic."""

    @classmethod
    def of(
        cls,
        family: str,
        analysis: Analysis,
        policy: BatchPolicy,
        messages: int = 0,
        nbytes: int = 0,
    ) -> FamilyTraffic:
        return cls(
            family,
            messages,
            nbytes,
            analysis.mean_rate,
            analysis.active_rate,
            analysis.traffic_class,
            analysis.period_seconds,
            analysis.flatness,
            policy,
        )

    @classmethod
    def unclassified(
        cls, family: str, counts: np.ndarray, nbytes: int, bin_seconds: float, policy: BatchPolicy
    ) -> FamilyTraffic:
        """A family described by its counts alone: too short a history to classify, or
        too slow for its class to matter (`policy` is then natural batching)."""
        messages = int(counts.sum())
        rate = messages / (max(counts.size, 1) * bin_seconds)
        return cls(family, messages, nbytes, rate, rate, None, None, None, policy)

    def as_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "messages": self.messages,
            "bytes": self.bytes,
            "rate": self.rate,
            "active_rate": self.active_rate,
            "class": None if self.traffic_class is None else str(self.traffic_class),
            "period_seconds": self.period_seconds,
            "flatness": self.flatness,
            "policy": {
                "max_messages": self.policy.max_messages,
                "max_bytes": self.policy.max_bytes,
                "linger_ms": self.policy.linger_seconds * 1000,
            },
        }


def describe_traffic(
    sampler: TrafficSampler, now: float, limits: PolicyLimits
) -> list[FamilyTraffic]:
    """Every family the sampler tracks, busiest first, analysed as an AdaptiveBatching
    within `limits` would (the bus's are amcp.batching.BUS_LIMITS)."""
    out = []
    for family in sampler.families():
        counts = sampler.series(family, now)
        nbytes = int(sampler.bytes_series(family, now).sum())
        if counts.size < MIN_BINS:
            out.append(
                FamilyTraffic.unclassified(
                    family, counts, nbytes, sampler.bin_seconds, limits.natural()
                )
            )
            continue
        analysis = analyse(counts, sampler.bin_seconds)
        policy = choose_policy(analysis, limits)
        out.append(FamilyTraffic.of(family, analysis, policy, int(counts.sum()), nbytes))
    out.sort(key=lambda t: t.rate, reverse=True)
    return out
