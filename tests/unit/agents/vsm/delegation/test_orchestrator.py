"""The orchestrator's pure pieces: the step a worker gets, and the check before spawning."""

from __future__ import annotations

import pytest

from agents.vsm.delegation.orchestrator import DelegationSpec, check_steps, step_for
from agents.vsm.delegation.plan import PlanError, Subtask

SPEC = DelegationSpec(description="the whole task", task_id="t1", subtask_timeout=7)


def test_a_step_carries_its_own_slice_of_the_context() -> None:
    step = step_for(SPEC, Subtask("a", "do a", "facts of a"), 2, 3, "do a")
    assert (step.task_id, step.step, step.iteration, step.text) == ("t1", 2, 3, "do a")
    assert step.description == "the whole task\n\nfacts of a"
    assert step.timeout == 7


def test_more_step_fields_reach_the_step() -> None:
    spec = DelegationSpec(description="d", task_id="t1", step_fields={"context_budget": 50})
    assert step_for(spec, Subtask("a", "x"), 0, 1, "x").context_budget == 50


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        (DelegationSpec(description="d", task_id="t 1"), "task_id"),
        (DelegationSpec(description="d", task_id="t", executor="cli"), "template"),
        (
            DelegationSpec(description="d", task_id="t", step_fields={"context_budget": 0}),
            "context_budget",
        ),
    ],
)
def test_a_step_no_worker_would_take_is_refused_first(spec: DelegationSpec, says: str) -> None:
    with pytest.raises(PlanError) as caught:
        check_steps(spec)
    assert says in str(caught.value) and "\n" not in str(caught.value)
    check_steps(SPEC, (Subtask("a", "x", alternative="y"),))  # a good one passes
