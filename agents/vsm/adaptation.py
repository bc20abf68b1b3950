"""The adaptation engine: threshold rules with hysteresis over the viability metrics (pure).

Each rule watches one metric. It activates when the metric passes its threshold with
enough samples in the window, and clears only once the metric is back past a second,
safer `clear` level (or the window has no samples left), so a metric hovering at the
threshold does not switch the adaptation on and off. The defaults are the issue's:

    review (per S1)   its error rate > 30%        clears <= 20%   its results reviewed
    lower_complexity  completion rate < 50%       clears >= 65%   S4 lowers its thresholds
    more_s2           oscillation rate > 20%      clears <= 10%   S2 strict, claims on cwd
    s5_approval       S3/S4 conflicts > 3         clears <= 1     S5 approves allocations
    parallelise       avg cycle iterations > 1.5  clears <= 1.2   S3 runs steps at once
    tighten_audits    audit pass rate < 80%       clears >= 90%   S3* strict rules
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agents.vsm.viability import Viability

__all__ = ["RULES", "Adaptation", "Changes", "Threshold", "evaluate"]


@dataclass(frozen=True, slots=True)
class Threshold:
    kind: str
    metric: str  # a Viability field; "error_rates" is per agent
    above: bool  # activate when the metric is above the threshold (else below)
    threshold: float
    clear: float
    min_samples: int
    effect: str

    def __post_init__(self) -> None:
        safe = self.clear <= self.threshold if self.above else self.clear >= self.threshold
        if not safe:
            raise ValueError(f"{self.kind}: the clear level must be on the safe side")

    def passed(self, value: float) -> bool:
        return value > self.threshold if self.above else value < self.threshold

    def recovered(self, value: float) -> bool:
        return value <= self.clear if self.above else value >= self.clear


RULES: tuple[Threshold, ...] = (
    Threshold("review", "error_rates", True, 0.30, 0.20, 3, "review the agent's results"),
    Threshold(
        "lower_complexity", "completion_rate", False, 0.50, 0.65, 4, "lower complexity thresholds"
    ),
    Threshold("more_s2", "oscillation_rate", True, 0.20, 0.10, 5, "more S2 coordination"),
    Threshold("s5_approval", "conflicts", True, 3, 1, 0, "S5 approves every allocation"),
    Threshold("parallelise", "avg_iterations", True, 1.5, 1.2, 4, "run S1 steps in parallel"),
    Threshold("tighten_audits", "audit_pass_rate", False, 0.80, 0.90, 5, "strict audits"),
)


@dataclass(frozen=True, slots=True)
class Adaptation:
    """One active adaptation: what it is, for whom, and the reading that triggered it."""

    kind: str
    target: str  # the agent for per-agent rules, else ""
    metric: str
    value: float
    threshold: float
    effect: str

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.target}" if self.target else self.kind

    def to_wire(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "target": self.target,
            "metric": self.metric,
            "value": self.value,
            "threshold": self.threshold,
            "effect": self.effect,
        }

    @classmethod
    def from_wire(cls, doc: Any) -> Adaptation | None:
        """The record, or None if `doc` is not one (a foreign write is ignored)."""
        try:
            return cls(
                str(doc["kind"]),
                str(doc.get("target", "")),
                str(doc["metric"]),
                float(doc["value"]),
                float(doc["threshold"]),
                str(doc.get("effect", "")),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return None


@dataclass(frozen=True, slots=True)
class Changes:
    activate: tuple[Adaptation, ...] = ()
    clear: tuple[tuple[Adaptation, float | None], ...] = ()  # with the recovered reading

    def __bool__(self) -> bool:
        return bool(self.activate or self.clear)


def _readings(v: Viability, rule: Threshold) -> dict[str, tuple[float | None, int]]:
    """target -> (value, samples) of the rule's metric."""
    if rule.metric == "error_rates":
        return {a: (rate, v.outcomes.get(a, 0)) for a, rate in v.error_rates.items()}
    samples = {
        "completion_rate": v.tasks,
        "avg_iterations": v.tasks,
        "audit_pass_rate": v.audits,
        "oscillation_rate": v.checks,
        "conflicts": v.conflicts,
    }[rule.metric]
    return {"": (getattr(v, rule.metric), samples)}


def evaluate(
    v: Viability, active: Mapping[str, Adaptation], rules: tuple[Threshold, ...] = RULES
) -> Changes:
    """What to switch on and off, given the metrics and the adaptations now active."""
    activate: list[Adaptation] = []
    clear: list[tuple[Adaptation, float | None]] = []
    for rule in rules:
        readings = _readings(v, rule)
        for target, (value, samples) in readings.items():
            key = f"{rule.kind}:{target}" if target else rule.kind
            if key in active or value is None:
                continue
            if samples >= rule.min_samples and rule.passed(value):
                activate.append(
                    Adaptation(rule.kind, target, rule.metric, value, rule.threshold, rule.effect)
                )
        for adaptation in active.values():
            if adaptation.kind != rule.kind:
                continue
            value, samples = readings.get(adaptation.target, (None, 0))
            if value is None or (samples >= rule.min_samples and rule.recovered(value)):
                clear.append((adaptation, value))
    return Changes(tuple(activate), tuple(clear))
