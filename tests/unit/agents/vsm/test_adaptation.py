"""The adaptation engine (pure): the issue's thresholds, minimum samples, hysteresis, and
clearing when the metric recovers or leaves the window."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.vsm.adaptation import RULES, Adaptation, Changes, Threshold, evaluate
from agents.vsm.viability import Viability


def metrics(**fields) -> Viability:
    base = dict(
        completion_rate=None, tasks=0, error_rates={}, outcomes={}, audit_pass_rate=None,
        audits=0, oscillation_rate=None, checks=0, conflicts=0, avg_iterations=None, window=0,
    )  # fmt: skip
    return Viability(**{**base, **fields})


def keys(changes: Changes) -> tuple[list[str], list[str]]:
    return [a.key for a in changes.activate], [a.key for a, _ in changes.clear]


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"error_rates": {"s1-a": 0.31}, "outcomes": {"s1-a": 3}}, "review:s1-a"),
        ({"completion_rate": 0.49, "tasks": 4}, "lower_complexity"),
        ({"oscillation_rate": 0.21, "checks": 5}, "more_s2"),
        ({"conflicts": 4}, "s5_approval"),
        ({"avg_iterations": 1.51, "tasks": 4}, "parallelise"),
        ({"audit_pass_rate": 0.79, "audits": 5}, "tighten_audits"),
    ],
)
def test_each_threshold_of_the_issue(fields, key) -> None:
    assert keys(evaluate(metrics(**fields), {})) == ([key], [])


@pytest.mark.parametrize(
    "fields",
    [
        {"error_rates": {"s1-a": 0.30}, "outcomes": {"s1-a": 10}},  # not past 30%
        {"error_rates": {"s1-a": 1.0}, "outcomes": {"s1-a": 2}},  # too few samples
        {"completion_rate": 0.5, "tasks": 10},
        {"completion_rate": 0.0, "tasks": 3},
        {"oscillation_rate": 0.2, "checks": 50},
        {"conflicts": 3},
        {"avg_iterations": 1.5, "tasks": 9},
        {"audit_pass_rate": 0.8, "audits": 9},
        {"audit_pass_rate": 0.0, "audits": 4},
    ],
)
def test_at_the_threshold_or_with_too_few_samples_nothing_happens(fields) -> None:
    assert not evaluate(metrics(**fields), {})


def _active(kind: str, target: str = "") -> dict[str, Adaptation]:
    rule = next(r for r in RULES if r.kind == kind)
    a = Adaptation(kind, target, rule.metric, 1.0, rule.threshold, rule.effect)
    return {a.key: a}


def test_an_active_adaptation_is_not_activated_again_and_holds_between_levels() -> None:
    active = _active("review", "s1-a")
    high = metrics(error_rates={"s1-a": 0.9}, outcomes={"s1-a": 10})
    between = metrics(error_rates={"s1-a": 0.25}, outcomes={"s1-a": 10})
    assert not evaluate(high, active) and not evaluate(between, active)


def test_it_clears_on_recovery_or_when_the_window_has_no_samples() -> None:
    active = _active("review", "s1-a")
    recovered = metrics(error_rates={"s1-a": 0.2}, outcomes={"s1-a": 5})
    assert keys(evaluate(recovered, active)) == ([], ["review:s1-a"])
    assert evaluate(recovered, active).clear[0][1] == 0.2
    gone = evaluate(metrics(), active)
    assert keys(gone) == ([], ["review:s1-a"]) and gone.clear[0][1] is None
    few = metrics(error_rates={"s1-a": 0.0}, outcomes={"s1-a": 2})  # too few to say
    assert not evaluate(few, active)
    assert keys(evaluate(metrics(conflicts=1), _active("s5_approval"))) == ([], ["s5_approval"])
    assert not evaluate(metrics(conflicts=2), _active("s5_approval"))


def test_rules_must_clear_on_the_safe_side() -> None:
    with pytest.raises(ValueError, match="safe side"):
        Threshold("x", "completion_rate", False, 0.5, 0.4, 1, "")
    with pytest.raises(ValueError, match="safe side"):
        Threshold("x", "oscillation_rate", True, 0.2, 0.3, 1, "")


def test_adaptations_round_trip_and_foreign_values_are_ignored() -> None:
    a = next(iter(_active("tighten_audits").values()))
    assert Adaptation.from_wire(a.to_wire()) == a
    bad = {"kind": "x", "metric": "m", "value": "v", "threshold": 1}
    for junk in (None, 3, {"kind": "x"}, bad):
        assert Adaptation.from_wire(junk) is None


@given(
    st.floats(0, 1), st.integers(0, 50), st.floats(0, 1), st.integers(0, 50),
    st.integers(0, 20), st.one_of(st.none(), st.floats(1, 5)), st.booleans(),
)  # fmt: skip
def test_hysteresis_never_activates_and_clears_the_same_key(
    rate, samples, completion, tasks, conflicts, iterations, on
) -> None:
    v = metrics(
        error_rates={"a": rate}, outcomes={"a": samples}, completion_rate=completion,
        tasks=tasks, conflicts=conflicts, avg_iterations=iterations,
    )  # fmt: skip
    active = {**_active("review", "a"), **_active("lower_complexity")} if on else {}
    changes = evaluate(v, active)
    on_keys, off_keys = keys(changes)
    assert not set(on_keys) & set(off_keys)
    assert not set(on_keys) & set(active) and set(off_keys) <= set(active)
    # a metric strictly between the two levels never changes anything
    for rule in RULES:
        for a, value in changes.clear:
            if a.kind == rule.kind and value is not None:
                assert rule.recovered(value)
