"""Batching policies: what the analyser's verdict means for batch size, byte limit and linger.

Natural batching (send whatever is queued when the sender gets to run, linger 0) is the
floor: it never delays a message. Lingering is chosen only when the rate is high enough that
a short wait is expected to fill a batch of several messages; docs/NETOPT.md argues it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

from netopt.analyser import MIN_BINS, Analysis, ClassThresholds, TrafficClass, analyse
from netopt.sampler import TrafficSampler
from netopt.stable import ClassHold, Hysteresis

if TYPE_CHECKING:  # numpy is imported by the analyser and the sampler when they run
    import numpy as np

__all__ = [
    "NO_BATCHING",
    "AdaptiveBatching",
    "BatchPolicy",
    "BatchingStrategy",
    "FixedBatching",
    "PolicyLimits",
    "choose_policy",
]


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    """Flush a batch at `max_messages` or `max_bytes`, or `linger_seconds` after it opened."""

    max_messages: int
    max_bytes: int
    linger_seconds: float

    def __post_init__(self) -> None:
        if self.max_messages < 1:
            raise ValueError(f"max_messages must be >= 1, got {self.max_messages}")
        if self.max_bytes < 1:
            raise ValueError(f"max_bytes must be >= 1, got {self.max_bytes}")
        if not self.linger_seconds >= 0.0:
            raise ValueError(f"linger_seconds must be >= 0, got {self.linger_seconds}")


NO_BATCHING = BatchPolicy(max_messages=1, max_bytes=1 << 20, linger_seconds=0.0)
"""One message per frame: the baseline for benchmarks."""


@dataclass(frozen=True, slots=True)
class PolicyLimits:
    """The bounds `choose_policy` works within."""

    max_linger_seconds: float = 0.005
    """Latency budget: no message waits longer than this for its batch to fill."""
    max_messages: int = 256
    max_bytes: int = 512 * 1024
    """Half the default 1 MiB frame limit, leaving room for per-message envelopes."""
    min_gain: float = 4.0
    """Linger only if the wait is expected to gather at least this many messages."""

    def natural(self) -> BatchPolicy:
        """Natural batching within these limits: no linger."""
        return BatchPolicy(self.max_messages, self.max_bytes, 0.0)

    def can_linger(self, rate: float) -> bool:
        """Whether traffic at `rate` messages per second gathers `min_gain` messages in
        the whole budget: below that, every class gets natural batching."""
        return rate * self.max_linger_seconds >= self.min_gain


def choose_policy(analysis: Analysis, limits: PolicyLimits = PolicyLimits()) -> BatchPolicy:
    """The batch policy for traffic described by `analysis`.

    The rate that matters is the one a lingering batch would see: the mean rate for steady
    traffic, the rate inside bursts for periodic or bursty traffic. If lingering the whole
    budget would gather fewer than `min_gain` messages, linger is 0 (natural batching). Else
    the batch is sized to what the budget gathers, so it usually flushes on count and the
    linger is only the bound on the first message's wait.
    """
    if analysis.traffic_class is TrafficClass.IDLE:
        return limits.natural()
    if analysis.traffic_class is TrafficClass.STEADY:
        rate = analysis.mean_rate
    else:
        rate = analysis.active_rate
    if not limits.can_linger(rate):
        return limits.natural()
    expected = rate * limits.max_linger_seconds
    max_messages = min(limits.max_messages, math.ceil(expected))
    linger = min(limits.max_linger_seconds, max_messages / rate)
    return BatchPolicy(max_messages, limits.max_bytes, linger)


class BatchingStrategy(Protocol):
    """What the bus asks of a batching strategy, adaptive or fixed."""

    def policy_for(self, family: str) -> BatchPolicy:
        """The policy to batch `family` with now."""
        ...

    def maybe_update(self, now: float, *, spectral: bool = True) -> dict[str, BatchPolicy]:
        """Re-evaluate if due (`spectral`: the analyser may run); return the families
        whose policy changed."""
        ...


@dataclass(frozen=True, slots=True)
class FixedBatching:
    """The same policy for every family, never updated (benchmark baselines)."""

    policy: BatchPolicy = NO_BATCHING

    def policy_for(self, family: str) -> BatchPolicy:
        return self.policy

    def maybe_update(self, now: float, *, spectral: bool = True) -> dict[str, BatchPolicy]:
        return {}


class AdaptiveBatching:
    """Per-family policies re-derived from the sampler at most once per `interval_seconds`.

    A family keeps natural batching until the sampler holds `min_bins` bins of its history.
    Its class is the one a `ClassHold` keeps in force (hysteresis, confirmed over
    `hysteresis.confirm` evaluations), so noise near a threshold does not flip it; its rates
    are the latest window's. A new policy that differs from the one in force only by a
    linger within `LINGER_SLACK` of it is not put in force (open batches would be cut for
    nothing). Policies are kept only for families the sampler still tracks, so memory stays
    bounded.

    A family whose busiest bin is too slow for any class to linger (most of an agent's:
    heartbeats, deltas, replies) has natural batching whatever the analysis says, so it is
    analysed only once in `slow_every` evaluations (its class, shown in status, is that
    much older and takes `hysteresis.confirm` such analyses to change; its rates are
    refreshed every time): the spectrum is 0.5-1 ms a family, which a dozen such families
    would spend every second for nothing (5.7 ms an evaluation for 12 families at 60 msg/s
    in all, 0.33 ms with `slow_every=30`). A family that speeds up is analysed at its next
    evaluation.
    """

    def __init__(
        self,
        sampler: TrafficSampler,
        *,
        interval_seconds: float = 1.0,
        min_bins: int = 64,
        limits: PolicyLimits = PolicyLimits(),
        thresholds: ClassThresholds = ClassThresholds(),  # noqa: B008 (frozen, so safe to share)
        hysteresis: Hysteresis = Hysteresis(),  # noqa: B008 (frozen, so safe to share)
        slow_every: int = 30,
    ) -> None:
        if min_bins < MIN_BINS:
            raise ValueError(f"min_bins must be >= {MIN_BINS}, got {min_bins}")
        if slow_every < 1:
            raise ValueError(f"slow_every must be >= 1, got {slow_every}")
        self.sampler = sampler
        self.interval_seconds = interval_seconds
        self.min_bins = min_bins
        self.limits = limits
        self.thresholds = thresholds
        self.hysteresis = hysteresis
        self.slow_every = slow_every
        self._natural = limits.natural()
        self._policies: dict[str, BatchPolicy] = {}
        self._analyses: dict[str, Analysis] = {}
        self._holds: dict[str, ClassHold] = {}
        self._skipped: dict[str, int] = {}  # slow families: evaluations since the last analysis
        self._next_update = -math.inf
        self.analysed = 0
        """Analyses run (the spectrum and the rest), over the strategy's life."""

    def policy_for(self, family: str) -> BatchPolicy:
        """The current policy of `family` (natural batching until it has been analysed)."""
        return self._policies.get(family, self._natural)

    def analysis_for(self, family: str) -> Analysis | None:
        """The last analysis of `family`, with the class in force, if it has had one."""
        return self._analyses.get(family)

    def in_force(self) -> dict[str, tuple[BatchPolicy, Analysis | None]]:
        """Every evaluated family's policy in force and the analysis it came from (None:
        a family too slow to linger for, evaluated without the spectral analyser)."""
        return {f: (p, self._analyses.get(f)) for f, p in self._policies.items()}

    def needs_spectrum(self, now: float) -> bool:
        """Whether a family has the history to be analysed and a bin busy enough that its
        class could make it linger. Until one has, `maybe_update(spectral=False)` decides
        every policy (natural batching) without the analyser, whose import (scipy.signal,
        ~0.9 s of CPU) an agent's traffic then never pays."""
        bin_seconds = self.sampler.bin_seconds
        for family in self.sampler.families():
            counts = self.sampler.series(family, now)
            if counts.size >= self.min_bins and self.limits.can_linger(
                float(counts.max()) / bin_seconds
            ):
                return True
        return False

    def maybe_update(self, now: float, *, spectral: bool = True) -> dict[str, BatchPolicy]:
        """Re-analyse every tracked family if `interval_seconds` have passed since last time.

        Returns the families whose policy changed, with their new policy. With `spectral`
        False the analyser is not run: every family keeps the policy in force (natural
        batching, unless it was analysed before), with no analysis if it never had one.
        """
        if now < self._next_update:
            return {}
        self._next_update = now + self.interval_seconds
        policies: dict[str, BatchPolicy] = {}
        analyses: dict[str, Analysis] = {}
        holds: dict[str, ClassHold] = {}
        skipped: dict[str, int] = {}
        changed: dict[str, BatchPolicy] = {}
        bin_seconds = self.sampler.bin_seconds
        for family in self.sampler.families():
            counts = self.sampler.series(family, now)
            if counts.size < self.min_bins:
                continue
            current = self.policy_for(family)
            last = self._analyses.get(family)
            hold = self._holds.get(family)
            n = self._skipped.get(family, 0) + 1
            keep = not spectral or (
                last is not None
                and n < self.slow_every
                and not current.linger_seconds
                and not self.limits.can_linger(float(counts.max()) / bin_seconds)
            )
            if keep:
                # Natural batching whatever the class: keep the class, refresh the rates.
                policies[family] = current
                if last is not None and hold is not None:
                    skipped[family], holds[family] = n, hold
                    analyses[family] = _with_rates(last, counts, bin_seconds)
                continue
            hold = holds[family] = hold or ClassHold(self.thresholds, self.hysteresis)
            raw = analyse(counts, bin_seconds, self.thresholds)
            self.analysed += 1
            analysis = analyses[family] = hold.update(raw)
            policy = choose_policy(analysis, self.limits)
            if _same(policy, current):
                policy = current
            else:
                changed[family] = policy
            policies[family] = policy
        self._policies, self._analyses, self._holds = policies, analyses, holds
        self._skipped = skipped
        return changed


def _with_rates(analysis: Analysis, counts: np.ndarray, bin_seconds: float) -> Analysis:
    """`analysis` with the mean and active rates of `counts` (as `analyse` derives them)."""
    active = counts[counts > 0]
    return replace(
        analysis,
        mean_rate=float(counts.mean()) / bin_seconds,
        active_rate=float(active.mean()) / bin_seconds if active.size else 0.0,
    )


LINGER_SLACK = 0.25
"""A linger within this fraction of the one in force is the same policy (rate noise)."""


def _same(new: BatchPolicy, current: BatchPolicy) -> bool:
    if new.max_messages != current.max_messages or new.max_bytes != current.max_bytes:
        return False
    if not new.linger_seconds or not current.linger_seconds:
        return new.linger_seconds == current.linger_seconds
    return abs(new.linger_seconds - current.linger_seconds) <= LINGER_SLACK * current.linger_seconds
