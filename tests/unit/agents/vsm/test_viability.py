"""Viability metrics from the replicated counters (pure): rates over the sliding window,
totals, the window's rotation, and the same answer whatever the order of keys."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from agents.vsm.viability import (
    AUDITS_FAILED,
    AUDITS_PASSED,
    CHECKS,
    CONFLICTS,
    FINISHED,
    ITERATIONS,
    OSCILLATIONS,
    S1_FAILED,
    S1_OK,
    SUCCEEDED,
    WINDOW,
    measure,
    render_viability,
    rotate,
)


def test_no_counters_no_rates() -> None:
    v = measure({})
    assert v.completion_rate is None and v.audit_pass_rate is None
    assert v.oscillation_rate is None and v.avg_iterations is None
    assert v.error_rates == {} and v.conflicts == 0 and v.window == 0


def test_rates_from_counters() -> None:
    values = {
        FINISHED: 8, SUCCEEDED: 6, ITERATIONS: 12, AUDITS_PASSED: 9, AUDITS_FAILED: 3,
        CHECKS: 10, OSCILLATIONS: 3, CONFLICTS: 4, S1_OK + "a": 3, S1_FAILED + "a": 1,
        S1_OK + "b": 5, "agents.members": {"x": {}}, "vsm.adaptations": {},
    }  # fmt: skip
    v = measure(values)
    assert v.completion_rate == 0.75 and v.avg_iterations == 1.5
    assert v.audit_pass_rate == 0.75 and v.oscillation_rate == 0.3 and v.conflicts == 4
    assert v.error_rates == {"a": 0.25, "b": 0.0} and v.outcomes == {"a": 4, "b": 5}
    assert v.totals["tasks"] == 8 and v.totals["succeeded"] == 6


def test_the_window_starts_at_the_older_checkpoint() -> None:
    values = {FINISHED: 10, SUCCEEDED: 4, S1_OK + "a": 4, S1_FAILED + "a": 6}
    first = rotate(values, 4)
    assert first == {"k": 1, "prev": {}, "cur": values}
    values = {FINISHED: 15, SUCCEEDED: 9, S1_OK + "a": 9, S1_FAILED + "a": 6, WINDOW: first}
    assert rotate(values, 10) is None  # only 5 since the last checkpoint
    second = rotate(values, 4)
    assert second is not None and second["k"] == 2 and second["prev"] == first["cur"]
    values[WINDOW] = second
    v = measure(values)  # the last 5 tasks: all succeeded, no failure of a
    assert v.window == 2 and v.tasks == 5 and v.completion_rate == 1.0
    assert v.error_rates == {"a": 0.0} and v.totals["tasks"] == 15


def test_a_lagging_replica_never_reads_negative_counts() -> None:
    window = {"k": 3, "prev": {FINISHED: 10, SUCCEEDED: 10}, "cur": {FINISHED: 20}}
    v = measure({FINISHED: 8, SUCCEEDED: 8, WINDOW: window})
    assert v.tasks == 0 and v.completion_rate is None


def test_bad_window_values_are_ignored() -> None:
    for window in (None, "x", {"prev": "y", "k": "z"}, {"prev": {FINISHED: "n"}}):
        v = measure({FINISHED: 2, SUCCEEDED: 1, WINDOW: window})
        assert v.tasks == 2 and v.completion_rate == 0.5


counts = st.dictionaries(
    st.sampled_from([FINISHED, SUCCEEDED, ITERATIONS, AUDITS_PASSED, AUDITS_FAILED, CHECKS,
                     OSCILLATIONS, CONFLICTS, S1_OK + "a", S1_FAILED + "a", S1_OK + "b"]),
    st.integers(0, 10_000),
)  # fmt: skip


@given(counts, st.randoms(use_true_random=False))
def test_the_same_values_give_the_same_metrics_in_any_order(values, rnd) -> None:
    items = list(values.items())
    rnd.shuffle(items)
    assert measure(dict(items)) == measure(values)


@given(counts, counts)
def test_rates_stay_in_unit_range(values, base) -> None:
    v = measure({**values, WINDOW: {"k": 1, "prev": base}})
    for rate in (v.completion_rate, v.audit_pass_rate, v.oscillation_rate, *v.error_rates.values()):
        assert rate is None or 0.0 <= rate <= 1.0
    assert all(n >= 0 for n in v.outcomes.values()) and v.conflicts >= 0


def test_render_names_metrics_and_adaptations() -> None:
    assert "not reported yet" in render_viability(None)
    report = {
        "metrics": measure({FINISHED: 4, SUCCEEDED: 1, S1_FAILED + "a": 3}).to_wire(),
        "adaptations": [
            {"kind": "review", "target": "a", "metric": "error_rates", "value": 1.0,
             "threshold": 0.3, "effect": "review the agent's results"}
        ],
    }  # fmt: skip
    text = render_viability(report)
    assert "completion rate 0.25" in text and "S1 error rates: a 1" in text
    assert "adaptation review for a: review the agent's results (error_rates 1 past 0.3)" in text
