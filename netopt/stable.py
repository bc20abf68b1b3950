"""A traffic class that holds still under noise: hysteresis on the analyser's features and a
confirmation count over successive evaluations.

`analyse` judges each 25.6 s window afresh, so a stream whose features sit near a threshold
(a steady stream slowed now and then by other processes has a cv of 0.25-0.5, against the
0.25 bar) flips between classes from one evaluation to the next. Here the thresholds that
would keep the class in force are widened (it is left only on clear evidence), and a new
class must be indicated `confirm` evaluations in a row before it is taken: the decision
spans a longer horizon than the rates, which stay those of the latest window.
docs/NETOPT.md ("Stable classification") has the measurements behind the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from netopt.analyser import Analysis, ClassThresholds, TrafficClass

__all__ = ["ClassHold", "Hysteresis", "stable_class"]


@dataclass(frozen=True, slots=True)
class Hysteresis:
    """How much harder it is to leave a class than to enter it."""

    widen: float = 2.0
    """Leaving STEADY needs dispersion and cv above this many times their thresholds;
    leaving IDLE a rate above this many times the idle rate."""
    periodic_enter_score: float = 0.75
    """Another class held gives way to PERIODIC only at this score (with none held: 0.6).
    A steady stream slowed at random by other work scores up to 0.77 at times; a true
    period scores 0.65-0.74 at the 5th percentile, 0.8 at the median (docs/NETOPT.md)."""
    periodic_keep_score: float = 0.45
    """A PERIODIC family stays periodic while its score is at least this."""
    confirm: int = 3
    """Evaluations in a row that must indicate a new class before it replaces the held one."""

    def __post_init__(self) -> None:
        if not self.widen >= 1.0:
            raise ValueError(f"widen must be >= 1, got {self.widen}")
        if self.confirm < 1:
            raise ValueError(f"confirm must be >= 1, got {self.confirm}")


def stable_class(
    analysis: Analysis,
    held: TrafficClass | None,
    thresholds: ClassThresholds = ClassThresholds(),  # noqa: B008 (frozen, so safe to share)
    hysteresis: Hysteresis = Hysteresis(),
) -> TrafficClass:
    """The class `analysis` indicates when `held` is in force: `analyse`'s rules, in its
    order, with the bar that keeps `held` lowered and the one to leave it for PERIODIC
    raised (None: no class yet, the plain rules)."""
    widen = hysteresis.widen
    idle_max = thresholds.idle_max_rate * (widen if held is TrafficClass.IDLE else 1.0)
    if analysis.mean_rate <= idle_max:
        return TrafficClass.IDLE
    if held is None:
        periodic_min = thresholds.periodic_min_score
    elif held is TrafficClass.PERIODIC:
        periodic_min = hysteresis.periodic_keep_score
    else:
        periodic_min = hysteresis.periodic_enter_score
    if analysis.periodicity >= periodic_min:
        return TrafficClass.PERIODIC
    steady = widen if held is TrafficClass.STEADY else 1.0
    if (
        analysis.dispersion <= thresholds.steady_max_dispersion * steady
        or analysis.cv <= thresholds.steady_max_cv * steady
    ):
        return TrafficClass.STEADY
    return TrafficClass.BURSTY


class ClassHold:
    """The class in force for one family, updated once per evaluation.

    The first evaluation sets it; after that a different class takes over only once
    `confirm` evaluations in a row indicated one (the latest of them is taken).
    """

    __slots__ = ("held", "hysteresis", "streak", "thresholds")

    def __init__(
        self,
        thresholds: ClassThresholds = ClassThresholds(),  # noqa: B008 (frozen, so safe to share)
        hysteresis: Hysteresis = Hysteresis(),
    ) -> None:
        self.thresholds = thresholds
        self.hysteresis = hysteresis
        self.held: TrafficClass | None = None
        self.streak = 0

    def update(self, analysis: Analysis) -> Analysis:
        """Feed one evaluation; return `analysis` with the class in force (its period is
        reported only while the class in force is PERIODIC)."""
        indicated = stable_class(analysis, self.held, self.thresholds, self.hysteresis)
        if self.held is None or indicated is self.held:
            self.held, self.streak = indicated, 0
        else:
            self.streak += 1
            if self.streak >= self.hysteresis.confirm:
                self.held, self.streak = indicated, 0
        if analysis.traffic_class is self.held:
            return analysis
        periodic = self.held is TrafficClass.PERIODIC
        return replace(
            analysis,
            traffic_class=self.held,
            period_seconds=analysis.period_seconds if periodic else None,
        )
