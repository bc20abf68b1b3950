"""The attention scorer: each formula at its edges, monotonicity, weights, novelty memory."""

from __future__ import annotations

import dataclasses
import math
from functools import partial
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus.errors import ConsensusError
from consensus.model import DIMENSIONS, Scores, Urgency
from consensus.novelty import NoveltyTracker
from consensus.scorer import ActionProfile, Scorer, ScorerConfig, VoterContext, Weights
from tests.support import factories

SCORER = Scorer()
units = st.floats(0.0, 1.0)


# a deploy, created at 0 and due a minute later
proposal = partial(factories.proposal, action="deploy", created_ms=0, deadline_ms=60_000)


def ctx(**changes: Any) -> VoterContext:
    fields: dict[str, Any] = {"role": "s3", "members": 5, "live": 5, "now_ms": 0}
    return VoterContext(**(fields | changes))


def approx(value: float) -> Any:
    return pytest.approx(value, abs=1e-12)


# Urgency ---------------------------------------------------------------------


def test_urgency_far_deadline_is_the_base_priority() -> None:
    far = {"deadline_ms": 10**12}
    assert SCORER.urgency(proposal(urgency="low", **far), ctx()) == approx(0.1)
    assert SCORER.urgency(proposal(urgency="normal", **far), ctx()) == approx(0.4)
    assert SCORER.urgency(proposal(urgency="high", **far), ctx()) == approx(0.7)
    assert SCORER.urgency(proposal(urgency="critical", **far), ctx()) == 1.0


def test_urgency_at_and_past_the_deadline() -> None:
    # closeness = 1: 1 - (1 - 0.1) * (1 - 0.5) = 0.55
    assert SCORER.urgency(proposal(urgency="low"), ctx(now_ms=60_000)) == approx(0.55)
    assert SCORER.urgency(proposal(urgency="low"), ctx(now_ms=90_000)) == approx(0.55)
    # one half-life (30 s) before: closeness 0.5 -> 1 - 0.9 * 0.75 = 0.325
    assert SCORER.urgency(proposal(urgency="low"), ctx(now_ms=30_000)) == approx(0.325)


def test_urgency_zero_and_one_edges() -> None:
    zero = Scorer(ScorerConfig(priority=dict.fromkeys(Urgency, 0.0), deadline_influence=0.0))
    assert zero.urgency(proposal(), ctx(now_ms=60_000)) == 0.0
    full = Scorer(ScorerConfig(deadline_influence=1.0))
    assert full.urgency(proposal(urgency="low"), ctx(now_ms=60_000)) == 1.0


@given(st.sampled_from(Urgency), st.integers(0, 200_000), st.integers(0, 200_000))
def test_urgency_rises_as_the_deadline_nears(level: Urgency, t1: int, t2: int) -> None:
    early, late = sorted((t1, t2))
    p = proposal(urgency=level)
    u_early, u_late = SCORER.urgency(p, ctx(now_ms=early)), SCORER.urgency(p, ctx(now_ms=late))
    assert 0.0 <= u_early <= u_late <= 1.0


@given(st.integers(0, 200_000))
def test_urgency_rises_with_the_level(now: int) -> None:
    values = [SCORER.urgency(proposal(urgency=u), ctx(now_ms=now)) for u in Urgency]
    assert values == sorted(values)


# Importance ------------------------------------------------------------------


def test_importance_reads_the_tables() -> None:
    # shutdown for s5: 0.6 * 0.9 + 0.4 * 1.0
    assert SCORER.importance(proposal(action="shutdown"), ctx(role="s5")) == approx(0.94)
    # restart for s4: 0.6 * 0.5 + 0.4 * 0.4
    assert SCORER.importance(proposal(action="restart"), ctx(role="s4")) == approx(0.46)
    # unknown action and role: 0.6 * 0.5 + 0.4 * 0.5
    assert SCORER.importance(proposal(action="paint"), ctx(role="guest")) == approx(0.5)


def test_importance_edges() -> None:
    config = ScorerConfig(
        actions={"nop": ActionProfile(impact=0.0, risk=0.0), "big": ActionProfile(1.0, 1.0)},
        relevance={"s1": {"nop": 0.0, "big": 1.0}},
    )
    scorer = Scorer(config)
    assert scorer.importance(proposal(action="nop"), ctx(role="s1")) == 0.0
    assert scorer.importance(proposal(action="big"), ctx(role="s1")) == 1.0


@given(units, units, units, units)
def test_importance_is_monotone_in_impact_and_relevance(
    i1: float, i2: float, r1: float, r2: float
) -> None:
    def importance(impact: float, relevance: float) -> float:
        config = ScorerConfig(
            actions={"a": ActionProfile(impact, 0.5)}, relevance={"s1": {"a": relevance}}
        )
        return Scorer(config).importance(proposal(action="a"), ctx(role="s1"))

    (i_lo, i_hi), (r_lo, r_hi) = sorted((i1, i2)), sorted((r1, r2))
    assert 0.0 <= importance(i_lo, r_lo) <= importance(i_hi, r_lo) <= importance(i_hi, r_hi) <= 1
    assert importance(i_lo, r_lo) <= importance(i_lo, r_hi)


# Risk ------------------------------------------------------------------------


def test_risk_hand_computed() -> None:
    # deploy, 3 targets, healthy: scope = 1 - 2^(-2/4); risk = 1 - 0.5 * (1 - 0.5 * scope)
    p = proposal(payload={"targets": ["a", "b", "c"]})
    scope = 1 - 2 ** (-0.5)
    assert SCORER.risk(p, ctx()) == approx(1 - 0.5 * (1 - 0.5 * scope))
    # restart, one target, health 0.4: 1 - 0.7 * 1 * (1 - 0.5 * 0.6) = 0.51
    assert SCORER.risk(proposal(action="restart"), ctx(cluster_health=0.4)) == approx(0.51)


def test_risk_edges() -> None:
    config = ScorerConfig(actions={"nop": ActionProfile(0.5, 0.0), "boom": ActionProfile(0.5, 1)})
    scorer = Scorer(config)
    assert scorer.risk(proposal(action="nop"), ctx()) == 0.0
    assert scorer.risk(proposal(action="nop", payload={"targets": ["only"]}), ctx()) == 0.0
    assert scorer.risk(proposal(action="boom"), ctx()) == 1.0
    everything = Scorer(ScorerConfig(actions=config.actions, scope_influence=1.0))
    assert everything.risk(proposal(action="nop", payload={"targets": "*"}), ctx()) == 1.0
    sick = Scorer(ScorerConfig(actions=config.actions, health_influence=1.0))
    assert sick.risk(proposal(action="nop"), ctx(cluster_health=0.0)) == 1.0


def test_risk_ignores_malformed_targets() -> None:
    for targets in ("n1", 7, {"n": 1}, None):
        p = proposal(action="restart", payload={"targets": targets})
        assert SCORER.risk(p, ctx()) == approx(0.3)
    assert SCORER.risk(proposal(action="restart", payload={"targets": []}), ctx()) == approx(0.3)


@given(st.integers(0, 60), st.integers(0, 60), units, units)
def test_risk_rises_with_scope_and_falls_with_health(
    n1: int, n2: int, h1: float, h2: float
) -> None:
    (few, many), (sick, well) = sorted((n1, n2)), sorted((h1, h2))

    def risk(targets: int, health: float) -> float:
        p = proposal(payload={"targets": [str(i) for i in range(targets)]})
        return SCORER.risk(p, ctx(cluster_health=health))

    assert 0.0 <= risk(few, well) <= risk(many, well) <= risk(many, sick) <= 1.0
    everything = proposal(payload={"targets": "*"})
    assert risk(many, sick) <= SCORER.risk(everything, ctx(cluster_health=sick))


# Confidence ------------------------------------------------------------------


def test_confidence_edges_and_half_life() -> None:
    assert SCORER.confidence(ctx()) == 1.0
    assert SCORER.confidence(ctx(live=0)) == 0.0
    assert SCORER.confidence(ctx(error_rate=1.0)) == 0.0
    assert SCORER.confidence(ctx(data_age_s=120.0)) == approx(0.5)
    # 4 of 5 live, 10% errors, data one half-life old: 0.8 * 0.9 * 0.5
    assert SCORER.confidence(ctx(live=4, error_rate=0.1, data_age_s=120)) == approx(0.36)


@given(st.integers(0, 5), st.integers(0, 5), units, units, st.floats(0, 1e4), st.floats(0, 1e4))
def test_confidence_is_monotone(
    l1: int, l2: int, e1: float, e2: float, a1: float, a2: float
) -> None:
    few, many = sorted((l1, l2))
    low_err, high_err = sorted((e1, e2))
    fresh, stale = sorted((a1, a2))
    best = SCORER.confidence(ctx(live=many, error_rate=low_err, data_age_s=fresh))
    assert SCORER.confidence(ctx(live=few, error_rate=low_err, data_age_s=fresh)) <= best
    assert SCORER.confidence(ctx(live=many, error_rate=high_err, data_age_s=fresh)) <= best
    assert SCORER.confidence(ctx(live=many, error_rate=low_err, data_age_s=stale)) <= best
    assert 0.0 <= best <= 1.0


# Novelty ---------------------------------------------------------------------


def test_novelty_from_repeats() -> None:
    assert SCORER.novelty(ctx()) == 1.0
    assert SCORER.novelty(ctx(repeats=1.0)) == 0.5
    assert SCORER.novelty(ctx(repeats=9.0)) == approx(0.1)


@given(st.floats(0, 1e6), st.floats(0, 1e6))
def test_novelty_falls_with_repeats(r1: float, r2: float) -> None:
    few, many = sorted((r1, r2))
    assert 0.0 < SCORER.novelty(ctx(repeats=many)) <= SCORER.novelty(ctx(repeats=few)) <= 1.0


def test_tracker_counts_and_decays() -> None:
    tracker = NoveltyTracker(half_life_s=60.0)
    assert tracker.observe("restart", "svc", 0) == 0.0
    assert tracker.observe("restart", "svc", 0) == 1.0
    assert tracker.repeats("restart", "svc", 60_000) == approx(1.0)  # 2 halved once
    assert tracker.repeats("restart", "svc", 120_000) == approx(0.5)
    assert tracker.repeats("restart", "other", 0) == 0.0
    assert tracker.repeats("deploy", "svc", 0) == 0.0
    assert tracker.observe("restart", None, 0) == 0.0


def test_flapping_proposal_loses_attention() -> None:
    tracker = NoveltyTracker(half_life_s=600.0)
    novelty = []
    for minute in range(6):  # the same restart every minute
        repeats = tracker.observe("restart", "svc", minute * 60_000)
        novelty.append(SCORER.novelty(ctx(repeats=repeats)))
    assert novelty[0] == 1.0
    assert novelty == sorted(novelty, reverse=True)
    assert novelty[-1] < 0.2


def test_tracker_out_of_order_observation_adds_its_decayed_weight() -> None:
    tracker = NoveltyTracker(half_life_s=60.0)
    tracker.observe("a", None, 120_000)
    tracker.observe("a", None, 60_000)  # one half-life older: adds 0.5
    assert tracker.repeats("a", None, 120_000) == approx(1.5)
    assert tracker.repeats("a", None, 0) == approx(1.5)  # a clock going back is no age


def test_tracker_memory_is_bounded() -> None:
    tracker = NoveltyTracker(max_keys=3)
    for i in range(10):
        tracker.observe("restart", f"r{i}", i)
    assert len(tracker) == 3
    assert tracker.repeats("restart", "r0", 10) == 0.0  # forgotten, oldest first
    assert tracker.repeats("restart", "r9", 10) > 0.0


@pytest.mark.parametrize("kwargs", [{"half_life_s": 0}, {"half_life_s": math.inf}, {"max_keys": 0}])
def test_tracker_settings_are_validated(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConsensusError):
        NoveltyTracker(**kwargs)  # type: ignore[arg-type]


# Combined score and weights --------------------------------------------------


def test_combine_edges_and_one_hot_weights() -> None:
    assert SCORER.combine(Scores(0, 0, 0, 0, 0)) == 0.0
    assert SCORER.combine(Scores(1, 1, 1, 1, 1)) == 1.0
    only_risk = Scorer(ScorerConfig(weights=Weights(0, 0, 3, 0, 0)))
    assert only_risk.combine(Scores(0.1, 0.2, 0.3, 0.4, 0.5)) == 0.3


def test_combine_default_weights_hand_computed() -> None:
    # 0.2 * 1 + 0.25 * 0.8 + 0.15 * 0.6 + 0.25 * 0.4 + 0.15 * 0
    assert SCORER.combine(Scores(1.0, 0.8, 0.6, 0.4, 0.0)) == approx(0.59)


raw_weights = st.lists(st.floats(0, 10), min_size=5, max_size=5).filter(lambda w: sum(w) > 0)


@given(st.builds(Scores, units, units, units, units, units), raw_weights)
def test_combined_is_a_mean_between_min_and_max(scores: Scores, raw: list[float]) -> None:
    combined = Scorer(ScorerConfig(weights=Weights(*raw))).combine(scores)
    values = list(scores.to_wire().values())
    assert min(values) - 1e-9 <= combined <= max(values) + 1e-9
    assert 0.0 <= combined <= 1.0


def test_weights_are_normalized() -> None:
    assert Weights(1, 1, 1, 1, 1) == Weights(2, 2, 2, 2, 2)
    w = Weights(2, 2, 0, 0, 0)
    assert (w.urgency, w.importance, w.risk) == (0.5, 0.5, 0.0)
    assert math.fsum(getattr(Weights(), n) for n in DIMENSIONS) == approx(1.0)


@pytest.mark.parametrize(
    "raw", [(0, 0, 0, 0, 0), (-1, 1, 1, 1, 1), (math.nan, 1, 1, 1, 1), (math.inf, 1, 1, 1, 1)]
)
def test_bad_weights_raise(raw: tuple[float, ...]) -> None:
    with pytest.raises(ConsensusError):
        Weights(*raw)


# Settings validation -----------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"priority": {Urgency.LOW: 0.1}},
        {"priority": dict.fromkeys(Urgency, 1.5)},
        {"deadline_half_life_s": 0},
        {"deadline_influence": 2},
        {"impact_share": -0.1},
        {"actions": {"x": (0.5, 0.5)}},
        {"relevance": {"s1": {"x": 1.1}}},
        {"weights": (1, 1, 1, 1, 1)},
    ],
)
def test_bad_scorer_config_raises(changes: dict[str, Any]) -> None:
    with pytest.raises(ConsensusError):
        ScorerConfig(**changes)


@pytest.mark.parametrize(
    "changes",
    [
        {"members": 0},
        {"live": 6},
        {"live": -1},
        {"error_rate": 1.5},
        {"data_age_s": -1},
        {"cluster_health": math.nan},
        {"repeats": -0.5},
        {"role": ""},
    ],
)
def test_bad_voter_context_raises(changes: dict[str, Any]) -> None:
    with pytest.raises(ConsensusError):
        ctx(**changes)


def test_score_puts_the_five_together() -> None:
    p, c = proposal(action="restart", urgency="high"), ctx(role="s1", live=4, repeats=1.0)
    scores = SCORER.score(p, c)
    assert scores == Scores(
        urgency=SCORER.urgency(p, c),
        importance=SCORER.importance(p, c),
        risk=SCORER.risk(p, c),
        confidence=0.8,
        novelty=0.5,
    )


def test_worked_example_of_the_docs() -> None:
    p = proposal(
        action="restart",
        urgency="high",
        created_ms=1_000,
        deadline_ms=31_000,
        payload={"targets": ["worker-1"]},
    )
    c = ctx(role="s1", now_ms=2_000)
    scores = SCORER.score(p, c)
    assert round(scores.urgency, 4) == 0.7768
    assert (scores.importance, scores.confidence, scores.novelty) == (approx(0.66), 1.0, 1.0)
    assert scores.risk == approx(0.3)
    assert round(SCORER.combine(scores), 4) == 0.7654


@given(
    now_ms=st.none() | st.integers(-5, 2**64) | st.floats(allow_nan=True),
    repeats=st.none() | st.floats(allow_nan=True) | st.integers(-5, 5),
)
def test_evolve_is_replace_with_only_the_new_fields_checked(now_ms: Any, repeats: Any) -> None:
    """A voter stamps its reused view with the time (and the novelty) per proposal via
    evolve, which must give exactly what dataclasses.replace gives, or the same refusal."""
    base = ctx(error_rate=0.25, data_age_s=3.0, cluster_health=0.5, repeats=1.5)
    changes = {k: v for k, v in (("now_ms", now_ms), ("repeats", repeats)) if v is not None}
    try:
        expected = dataclasses.replace(base, **changes)
    except ConsensusError:
        with pytest.raises(ConsensusError):
            base.evolve(now_ms=now_ms, repeats=repeats)
        return
    got = base.evolve(now_ms=now_ms, repeats=repeats)
    assert got == expected and got is not base
    assert base.now_ms == ctx().now_ms and base.repeats == 1.5  # the original is unchanged
