"""S3 control: takes tasks (`run-task`) and runs the loop across the cluster
(agents/vsm/s3/taskloop.py): allocation by S4's analysis, capabilities and load, S3* audits."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from agents.runtime.tools import CallContext, Example, Tool, tool
from agents.vsm.role import VsmRole
from agents.vsm.s3.taskloop import TaskLoop
from agents.vsm.tasks import CycleResult, TaskSpec

if TYPE_CHECKING:
    from agents.runtime.config import AgentConfig

__all__ = ["ControlRole"]

EXAMPLES = [
    Example(
        {"description": "run the test suite", "steps": ["pytest -q"], "cwd": "/srv/app"},
        description="one shell step; S3* has no check command to run",
    ),
    Example(
        {
            "description": "fix the failing test in tests/test_api.py",
            "executor": "cli",
            "template": ["claude", "-p", "{text}"],
            "check": "pytest -q tests/test_api.py",
            "resource": "tests/test_api.py",
        },
        description="an LLM CLI does the work; S3* audits it with the check command",
    ),
]


class ControlRole(VsmRole):
    role = "s3"

    def __init__(self, config: AgentConfig) -> None:
        super().__init__(config)
        self.loop = TaskLoop(self)
        self.cycles = {"succeeded": 0, "failed": 0}

    def role_tools(self) -> Iterable[Tool]:
        role = self

        @tool("run-task", audited=False, examples=EXAMPLES)
        async def run_task(args: TaskSpec, ctx: CallContext) -> CycleResult:
            """Run a task through the loop: S4 analyses, S5 classifies (a critical action
            is voted on), S3 allocates, S2 coordinates, S1 runs, S3* audits."""
            result = await role.run(args)
            role.cycles["succeeded" if result.success else "failed"] += 1
            return result

        return [run_task]

    async def run(self, spec: TaskSpec) -> CycleResult:
        """The loop between the pre_task hooks (which may refuse the task) and post_task."""
        hooks = self.agent.hooks
        spec = spec.with_id()  # the hooks and the loop name the same task
        doc = {"task": spec.id, **spec.model_dump(include={"description", "steps", "executor"})}
        verdict = await hooks.gate("pre_task", **doc)
        if verdict.allowed:
            result = await self.loop.run(spec)
        else:
            summary = f"vetoed by pre_task hook {verdict.hook}: {verdict.reason}"
            await self.log("cycle_vetoed", task=spec.id, reason=summary)
            result = CycleResult(task_id=spec.id, success=False, summary=summary)
        hooks.notify("post_task", **doc, success=result.success, summary=result.summary)
        return result

    def status(self) -> dict[str, object]:
        return {"cycles": dict(self.cycles), "dispatched": dict(self.loop.inflight)}
