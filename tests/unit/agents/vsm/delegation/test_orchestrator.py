"""The orchestrator without workers: the step a worker gets, the check before spawning, and
what a cancellation leaves each attempt."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from agents.vsm.delegation.orchestrator import (
    DelegationReport,
    DelegationSpec,
    SubtaskRun,
    _Delegation,
    check_steps,
    step_for,
)
from agents.vsm.delegation.plan import PlanError, Subtask
from agents.vsm.delegation.worker import WorkerTemplate

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


async def test_a_cancelled_delegation_lets_each_attempt_finish_its_stop() -> None:
    """Cancelling the orchestrator cancels each running attempt once: an attempt's
    graceful stop (its finally) must not be cut short by a second cancellation when
    another attempt stopped sooner (gather would end at the first and cancel again)."""
    spec = DelegationSpec(description="d", task_id="t", max_workers=2)
    job = _Delegation(None, spec, WorkerTemplate(("worker",)))  # type: ignore[arg-type]
    runs = [SubtaskRun(Subtask(str(i), "x"), i) for i in (0, 1)]
    report = DelegationReport("t", "o", "d", "steps", runs)
    inside, stopped = [], []
    both_in = asyncio.Event()

    async def attempt(run: SubtaskRun, text: str, alternative: bool) -> None:
        inside.append(run.subtask.id)
        if len(inside) == 2:
            both_in.set()
        try:
            await asyncio.Event().wait()  # a worker running its step
        finally:  # a stop that awaits (SIGTERM, the worker's exit), one slower than the other
            for _ in range(10 * run.index):
                await asyncio.sleep(0)
            stopped.append(run.subtask.id)

    job.attempt = attempt  # type: ignore[method-assign,assignment]
    running = asyncio.create_task(job.run(report))
    await asyncio.wait_for(both_in.wait(), 5)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    shutil.rmtree(job.log_dir)
    assert sorted(stopped) == ["0", "1"]
    assert [r.status for r in runs] == ["pending"] * 2  # run() was cut before its report
