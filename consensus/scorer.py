"""The five-dimension attention scorer: how much a proposal deserves this voter's attention.

A pure function of a Proposal, the voter's VoterContext and a ScorerConfig. The per-action
and per-role tables are data (DEFAULT_ACTIONS, DEFAULT_RELEVANCE), replaceable in the
config. Every formula is in docs/CONSENSUS.md; each one stays in [0, 1] and is monotone in
its inputs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import consensus._validate as check
from consensus.errors import ConsensusError
from consensus.model import DIMENSIONS, Proposal, Scores, Urgency

__all__ = [
    "DEFAULT_ACTIONS",
    "DEFAULT_PRIORITY",
    "DEFAULT_RELEVANCE",
    "ActionProfile",
    "Scorer",
    "ScorerConfig",
    "VoterContext",
    "Weights",
]


@dataclass(frozen=True)
class ActionProfile:
    """What an action class means: its impact (for importance) and base risk, in [0, 1]."""

    impact: float
    risk: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "impact", check.unit("impact", self.impact))
        object.__setattr__(self, "risk", check.unit("risk", self.risk))


DEFAULT_PRIORITY: Mapping[Urgency, float] = MappingProxyType(
    {Urgency.LOW: 0.1, Urgency.NORMAL: 0.4, Urgency.HIGH: 0.7, Urgency.CRITICAL: 1.0}
)
"""Base urgency of each urgency level, before the deadline raises it."""

DEFAULT_ACTIONS: Mapping[str, ActionProfile] = MappingProxyType(
    {
        "restart": ActionProfile(impact=0.5, risk=0.3),
        "deploy": ActionProfile(impact=0.7, risk=0.5),
        "shutdown": ActionProfile(impact=0.9, risk=0.8),
        "key_rotation": ActionProfile(impact=0.8, risk=0.6),
        "policy_change": ActionProfile(impact=0.8, risk=0.5),
    }
)
"""Impact and base risk of the critical action classes; unknown actions use 0.5 and 0.5."""

DEFAULT_RELEVANCE: Mapping[str, Mapping[str, float]] = MappingProxyType(
    {
        "s1": MappingProxyType(
            {"restart": 0.9, "deploy": 0.8, "shutdown": 0.9, "key_rotation": 0.4,
             "policy_change": 0.3}
        ),
        "s2": MappingProxyType(
            {"restart": 0.6, "deploy": 0.5, "shutdown": 0.6, "key_rotation": 0.3,
             "policy_change": 0.5}
        ),
        "s3": MappingProxyType(
            {"restart": 0.8, "deploy": 0.8, "shutdown": 0.9, "key_rotation": 0.6,
             "policy_change": 0.7}
        ),
        "s4": MappingProxyType(
            {"restart": 0.4, "deploy": 0.7, "shutdown": 0.6, "key_rotation": 0.6,
             "policy_change": 0.8}
        ),
        "s5": MappingProxyType(
            {"restart": 0.5, "deploy": 0.7, "shutdown": 1.0, "key_rotation": 0.9,
             "policy_change": 1.0}
        ),
    }
)  # fmt: skip
"""Relevance of each action to each VSM role (s1 to s5); unknown pairs use 0.5."""


@dataclass(frozen=True)
class Weights:
    """Weights of the five dimensions in the combined score; normalized to sum to 1.

    Each must be finite and >= 0, and at least one > 0. Weights(1, 1, 1, 1, 1) and
    Weights(2, 2, 2, 2, 2) are the same weighting.
    """

    urgency: float = 0.20
    importance: float = 0.25
    risk: float = 0.15
    confidence: float = 0.25
    novelty: float = 0.15

    def __post_init__(self) -> None:
        raw = [check.nonnegative(f"weight of {name}", getattr(self, name)) for name in DIMENSIONS]
        total = math.fsum(raw)
        if total <= 0.0:
            raise ConsensusError("at least one dimension weight must be > 0")
        for name, value in zip(DIMENSIONS, raw, strict=True):
            object.__setattr__(self, name, value / total)


@dataclass(frozen=True, kw_only=True)
class ScorerConfig:
    """Tables and constants of the scorer formulas; docs/CONSENSUS.md names each one."""

    priority: Mapping[Urgency, float] = field(default_factory=lambda: DEFAULT_PRIORITY)
    deadline_half_life_s: float = 30.0
    deadline_influence: float = 0.5
    actions: Mapping[str, ActionProfile] = field(default_factory=lambda: DEFAULT_ACTIONS)
    default_action: ActionProfile = ActionProfile(impact=0.5, risk=0.5)
    relevance: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: DEFAULT_RELEVANCE)
    default_relevance: float = 0.5
    impact_share: float = 0.6
    scope_half_targets: float = 4.0
    scope_influence: float = 0.5
    health_influence: float = 0.5
    data_half_life_s: float = 120.0
    weights: Weights = Weights()

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        priority = {check.enum(Urgency, "priority key", k): v for k, v in self.priority.items()}
        if set(priority) != set(Urgency):
            raise ConsensusError("priority must give a value for every urgency level")
        set_(self, "priority", MappingProxyType(
            {k: check.unit(f"priority of {k}", v) for k, v in priority.items()}
        ))  # fmt: skip
        for name in ("deadline_half_life_s", "scope_half_targets", "data_half_life_s"):
            set_(self, name, check.positive(name, getattr(self, name)))
        for name in (
            "deadline_influence",
            "default_relevance",
            "impact_share",
            "scope_influence",
            "health_influence",
        ):
            set_(self, name, check.unit(name, getattr(self, name)))
        profiles = [*self.actions.values(), self.default_action]
        if not all(isinstance(p, ActionProfile) for p in profiles):
            raise ConsensusError("actions must map action names to ActionProfile")
        set_(self, "actions", MappingProxyType(dict(self.actions)))
        set_(self, "relevance", MappingProxyType({
            role: MappingProxyType(
                {action: check.unit(f"relevance of {action} to {role}", value)
                 for action, value in table.items()}
            )
            for role, table in self.relevance.items()
        }))  # fmt: skip
        if not isinstance(self.weights, Weights):
            raise ConsensusError("weights must be a Weights")


@dataclass(frozen=True, kw_only=True)
class VoterContext:
    """What the voter knows about itself and the cluster when it scores a proposal.

    `members` counts registered members, `live` those it currently sees alive; `error_rate`
    is its own recent failure fraction; `data_age_s` how stale its view is; `repeats` the
    decayed count of earlier proposals with the same action and resource, from
    NoveltyTracker.observe().
    """

    role: str
    members: int
    live: int
    now_ms: int
    error_rate: float = 0.0
    data_age_s: float = 0.0
    cluster_health: float = 1.0
    repeats: float = 0.0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "role", check.text("role", self.role, 64))
        set_(self, "members", check.integer("members", self.members, 1, 2**31))
        set_(self, "live", check.integer("live", self.live, 0, self.members))
        set_(self, "now_ms", check.integer("now_ms", self.now_ms, 0, 2**63 - 1))
        set_(self, "error_rate", check.unit("error_rate", self.error_rate))
        set_(self, "data_age_s", check.nonnegative("data_age_s", self.data_age_s))
        set_(self, "cluster_health", check.unit("cluster_health", self.cluster_health))
        set_(self, "repeats", check.nonnegative("repeats", self.repeats))

    def evolve(self, *, now_ms: int | None = None, repeats: float | None = None) -> VoterContext:
        """This context at `now_ms` and/or with `repeats`, checking only those: a voter
        reuses its view of the cluster for many proposals and stamps each with the time."""
        changes: dict[str, object] = {}
        if now_ms is not None:
            changes["now_ms"] = check.integer("now_ms", now_ms, 0, 2**63 - 1)
        if repeats is not None:
            changes["repeats"] = check.nonnegative("repeats", repeats)
        return check.evolve(self, **changes)


class Scorer:
    """Scores proposals for one voter configuration. Stateless and pure."""

    def __init__(self, config: ScorerConfig | None = None) -> None:
        self.config = config if config is not None else ScorerConfig()

    def score(self, proposal: Proposal, ctx: VoterContext) -> Scores:
        """All five dimensions."""
        return Scores(
            urgency=self.urgency(proposal, ctx),
            importance=self.importance(proposal, ctx),
            risk=self.risk(proposal, ctx),
            confidence=self.confidence(ctx),
            novelty=self.novelty(ctx),
        )

    def combine(self, scores: Scores) -> float:
        """The weighted mean of the five dimensions, in [0, 1]."""
        weights = self.config.weights
        total = math.fsum(getattr(weights, n) * getattr(scores, n) for n in DIMENSIONS)
        return _clamp(total)

    def urgency(self, proposal: Proposal, ctx: VoterContext) -> float:
        """Priority, raised as the deadline nears: 1 - (1 - p) * (1 - d * closeness)."""
        cfg = self.config
        remaining_s = max(0, proposal.deadline_ms - ctx.now_ms) / 1000.0
        closeness = 2.0 ** (-remaining_s / cfg.deadline_half_life_s)
        p = cfg.priority[proposal.urgency]
        return _clamp(1.0 - (1.0 - p) * (1.0 - cfg.deadline_influence * closeness))

    def importance(self, proposal: Proposal, ctx: VoterContext) -> float:
        """Impact of the action class mixed with its relevance to the voter's role."""
        cfg = self.config
        impact = cfg.actions.get(proposal.action, cfg.default_action).impact
        relevance = cfg.relevance.get(ctx.role, {}).get(proposal.action, cfg.default_relevance)
        return _clamp(cfg.impact_share * impact + (1.0 - cfg.impact_share) * relevance)

    def risk(self, proposal: Proposal, ctx: VoterContext) -> float:
        """Base risk of the action, raised by its scope and by poor cluster health."""
        cfg = self.config
        base = cfg.actions.get(proposal.action, cfg.default_action).risk
        scope = _scope(proposal, cfg.scope_half_targets)
        sick = 1.0 - ctx.cluster_health
        safe_action = 1.0 - base
        safe_scope = 1.0 - cfg.scope_influence * scope
        safe_health = 1.0 - cfg.health_influence * sick
        return _clamp(1.0 - safe_action * safe_scope * safe_health)

    def confidence(self, ctx: VoterContext) -> float:
        """How far the voter can trust its own view: liveness, own errors, data freshness."""
        freshness = 2.0 ** (-ctx.data_age_s / self.config.data_half_life_s)
        return _clamp(ctx.live / ctx.members * (1.0 - ctx.error_rate) * freshness)

    def novelty(self, ctx: VoterContext) -> float:
        """1 / (1 + repeats): 1 for a first proposal, 0.5 after one fresh repeat."""
        return _clamp(1.0 / (1.0 + ctx.repeats))


def _scope(proposal: Proposal, half_targets: float) -> float:
    """How wide the action reaches, in [0, 1]: 0 for one target, 1 for "*" (everything).

    Targets are `payload["targets"]`: a list (its length counts) or "*"; anything else is
    one target. scope = 1 - 2^(-(targets - 1) / half_targets).
    """
    targets = proposal.payload.get("targets")
    if targets == "*":
        return 1.0
    count = len(targets) if isinstance(targets, tuple) else 1
    return 1.0 - 2.0 ** (-max(0, count - 1) / half_targets)


def _clamp(value: float) -> float:
    """Pin a formula result into [0, 1] against float rounding at the edges."""
    return min(1.0, max(0.0, value))
