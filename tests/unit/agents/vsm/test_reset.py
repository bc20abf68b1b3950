"""`amcp reset`'s plan (agents.vsm.reset) and the viability baseline it writes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from agents.vsm.reset import plan_reset
from agents.vsm.viability import (
    ADAPTATIONS,
    AUDITS_FAILED,
    AUDITS_PASSED,
    BASE,
    FINISHED,
    S1_FAILED,
    S1_OK,
    SUCCEEDED,
    WINDOW,
    measure,
)

VALUES = {
    FINISHED: 7,
    SUCCEEDED: 5,
    S1_OK + "s1-a": 9,
    ADAPTATIONS: {"review:s1-a": {"kind": "review"}, "tighten_audits": {"kind": "x"}},
    WINDOW: {"k": 1, "prev": {}, "cur": {FINISHED: 4}},
    "task.t-1.context": {"e1": {"text": "a"}, "e2": {"text": "b"}},
    "task.t-1.compaction": {"summary": "s"},
    "task.t-2.compaction": None,  # cleared before
    "task.t-1.tags": ["x", "y"],
    "task.t-1.count": 3,
    "agents.members": {"s1-a": {}},
    "notes.keep": "me",
}
TYPES = {
    "task.t-1.context": "lwwmap",
    "task.t-1.compaction": "lwwreg",
    "task.t-2.compaction": "lwwreg",
    "task.t-1.tags": "orset",
    "task.t-1.count": "gcounter",
    "agents.members": "lwwmap",
    "notes.keep": "lwwreg",
}


def test_the_plan_clears_counters_adaptations_and_task_state_only() -> None:
    plan = plan_reset(VALUES, TYPES)
    assert plan.baseline == {FINISHED: 7, SUCCEEDED: 5, S1_OK + "s1-a": 9}
    assert plan.adaptations == ["review:s1-a", "tighten_audits"]
    assert plan.task_maps == {"task.t-1.context": ["e1", "e2"]}
    assert plan.task_registers == ["task.t-1.compaction"]
    assert plan.task_sets == {"task.t-1.tags": ["x", "y"]}
    assert plan.kept == ["task.t-1.count"]
    wire = plan.to_wire()
    assert wire["task_state"] == ["task.t-1.compaction", "task.t-1.context", "task.t-1.tags"]
    assert wire["viability"]["tasks"] == 7
    text = "\n".join(plan.describe())
    assert "2 cleared (review:s1-a, tighten_audits)" in text
    assert "3 keys cleared" in text and "kept (counters only grow): task.t-1.count" in text
    assert "agents.members" not in text and "notes.keep" not in text


def test_an_empty_cluster_plans_nothing_but_the_baseline() -> None:
    plan = plan_reset({"agents.members": {}}, {"agents.members": "lwwmap"})
    assert plan.baseline == {} and plan.adaptations == [] and plan.task_keys == []
    assert plan.describe()[1] == "adaptations: 0 cleared (none active)"


def test_after_a_reset_the_metrics_count_from_zero() -> None:
    before = {FINISHED: 10, SUCCEEDED: 2, AUDITS_FAILED: 8, S1_FAILED + "s1-a": 6}
    after = measure({**before, BASE: dict(before)})
    assert after.tasks == 0 and after.completion_rate is None and after.error_rates == {}
    assert after.totals["tasks"] == 0 and after.audits == 0
    later = measure({**before, FINISHED: 12, SUCCEEDED: 4, BASE: dict(before)})
    assert (later.tasks, later.completion_rate, later.totals["succeeded"]) == (2, 1.0, 2)


counts = st.dictionaries(
    st.sampled_from([FINISHED, SUCCEEDED, AUDITS_PASSED, AUDITS_FAILED, S1_OK + "a"]),
    st.integers(0, 1000),
)


@given(base=counts, since=counts, prev=counts, window_after=st.booleans())
def test_a_baseline_reads_as_if_the_counters_started_there(
    base: dict[str, int], since: dict[str, int], prev: dict[str, int], window_after: bool
) -> None:
    """With the baseline, the metrics are those of the counts since it; a window checkpoint
    taken after the reset still counts from that checkpoint."""
    now = {k: base.get(k, 0) + since.get(k, 0) for k in base.keys() | since.keys()}
    if window_after:  # a rotation after the reset: prev lies between base and now
        checkpoint = {k: base.get(k, 0) + min(prev.get(k, 0), since.get(k, 0)) for k in now}
        expected = {k: now[k] - checkpoint[k] for k in now}
        window = {"k": 2, "prev": checkpoint, "cur": now}
    else:  # a window from before the reset never reaches past it
        checkpoint = {k: min(prev.get(k, 0), base.get(k, 0)) for k in now}
        expected = {k: now[k] - base.get(k, 0) for k in now}
        window = {"k": 1, "prev": checkpoint, "cur": checkpoint}
    reset = measure({**now, WINDOW: window, BASE: dict(base)})
    fresh = measure({**expected})
    assert reset.tasks == fresh.tasks and reset.audits == fresh.audits
    assert reset.completion_rate == fresh.completion_rate
    assert reset.error_rates == fresh.error_rates
    assert reset.totals == measure({k: now[k] - base.get(k, 0) for k in now}).totals
