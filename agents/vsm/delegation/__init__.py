"""Delegation: a task split into subtasks run by ephemeral S1 workers from a bounded pool,
with a failure policy per subtask and a synthesis of the results (docs/ORCHESTRATION.md)."""

import typing

import lazy_loader

if typing.TYPE_CHECKING:
    from agents.vsm.delegation.orchestrator import (
        DelegationReport,
        DelegationSpec,
        SubtaskRun,
        check_steps,
        delegate,
        new_task_id,
        orchestrator_id,
        step_for,
    )
    from agents.vsm.delegation.plan import PlanError, Subtask, parse_plan, plan_from_steps
    from agents.vsm.delegation.policy import FailurePolicy, Next, next_move
    from agents.vsm.delegation.pool import WorkerPool
    from agents.vsm.delegation.synthesis import Result, concatenate, synthesis_input
    from agents.vsm.delegation.worker import Attempt, Worker, WorkerTemplate

__getattr__, __dir__, _ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "orchestrator": [
            "DelegationReport",
            "DelegationSpec",
            "SubtaskRun",
            "check_steps",
            "delegate",
            "new_task_id",
            "orchestrator_id",
            "step_for",
        ],
        "plan": ["PlanError", "Subtask", "parse_plan", "plan_from_steps"],
        "policy": ["FailurePolicy", "Next", "next_move"],
        "pool": ["WorkerPool"],
        "synthesis": ["Result", "concatenate", "synthesis_input"],
        "worker": ["Attempt", "Worker", "WorkerTemplate"],
    },
)

__all__ = [
    "Attempt",
    "DelegationReport",
    "DelegationSpec",
    "FailurePolicy",
    "Next",
    "PlanError",
    "Result",
    "Subtask",
    "SubtaskRun",
    "Worker",
    "WorkerPool",
    "WorkerTemplate",
    "check_steps",
    "concatenate",
    "delegate",
    "new_task_id",
    "next_move",
    "orchestrator_id",
    "parse_plan",
    "plan_from_steps",
    "step_for",
    "synthesis_input",
]
