"""S1 operations: run task steps with an executor and count how they went.

An S1 agent serves `execute` on its own subject and on the s1 queue group. Its executors
are the capabilities among shell, python and cli it was started with (`--capability
shell`), all three when none is named; they are announced in its member record so S3
allocates only steps it can run. Each step's outcome goes to the replicated counters
`vsm.s1.ok.<id>` / `vsm.s1.failed.<id>` (S3*'s check runs are not counted: a failed
check says the work is wrong, not that this agent failed) and to the audit log, on
record before S3 hears of it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from agents.runtime.tools import CallContext, Example, Tool, tool
from agents.vsm.role import VsmRole
from agents.vsm.s1.executors import EXECUTORS, RunOutcome, execute, resource_digest
from agents.vsm.s1.prompting import StepPrompts
from agents.vsm.tasks import StepIn, StepOut
from agents.vsm.viability import S1_FAILED, S1_OK
from amcp.errors import ConfigError

if TYPE_CHECKING:
    from agents.runtime.config import AgentConfig

__all__ = ["OperationsRole"]

EXAMPLES = [
    Example(
        {"task_id": "t-42", "step": 0, "text": "pytest -q", "cwd": "/srv/app", "timeout": 600},
        description="a shell command, run by /bin/sh",
    ),
    Example(
        {
            "task_id": "t-42",
            "step": 1,
            "executor": "cli",
            "template": ["claude", "-p", "{text}"],
            "text": "summarise the failing tests",
        },
        description="an external CLI: the template's {text} becomes the step",
    ),
]


def _step_fields(step: StepIn) -> dict[str, object]:
    return step.model_dump(include={"task_id", "step", "iteration", "executor", "text"})


class OperationsRole(VsmRole):
    role = "s1"

    def __init__(self, config: AgentConfig) -> None:
        super().__init__(config)
        named = [c for c in config.capabilities if c in EXECUTORS]
        self.executors = tuple(named or EXECUTORS)
        config.extra["executors"] = list(self.executors)
        self.steps = {"ok": 0, "failed": 0}
        self.prompts = StepPrompts(self)

    def role_tools(self) -> Iterable[Tool]:
        role = self

        @tool("execute", audited=False, examples=EXAMPLES)
        async def execute_step(args: StepIn, ctx: CallContext) -> StepOut:
            """Run one task step with its executor (shell, python or cli): stdin closed,
            a timeout, output captured and capped."""
            return await role.run(args)

        return [execute_step]

    async def run(self, step: StepIn) -> StepOut:
        agent = self.agent
        started = time.perf_counter()
        vetoed = await self._gate(step)
        if vetoed is not None:
            out = StepOut(
                task_id=step.task_id, step=step.step, agent=agent.id, ok=False, error=vetoed
            )
        elif step.executor not in self.executors:
            out = StepOut(
                task_id=step.task_id,
                step=step.step,
                agent=agent.id,
                ok=False,
                error=f"{agent.id} runs {', '.join(self.executors)} steps, not {step.executor}",
            )
        else:
            outcome, note = await self._run_step(step)
            digest = None
            if step.resource:  # hashing a file may take a while: not on the event loop
                digest = await asyncio.to_thread(resource_digest, step.resource, step.cwd)
            out = StepOut(
                task_id=step.task_id,
                step=step.step,
                agent=agent.id,
                ok=outcome.ok,
                exit_code=outcome.exit_code,
                timed_out=outcome.timed_out,
                stdout=outcome.stdout,
                stderr=outcome.stderr,
                truncated=outcome.truncated,
                error=outcome.error,
                ms=round((time.perf_counter() - started) * 1000, 3),
                digest=digest,
                context=note,
            )
        if step.step >= 0 and vetoed is None:  # a veto is policy, not this agent failing
            self.steps["ok" if out.ok else "failed"] += 1
            await self.count((S1_OK if out.ok else S1_FAILED) + agent.id)
        await self.log(
            "executed",
            task=step.task_id,
            step=step.step,
            iteration=step.iteration,
            executor=step.executor,
            ok=out.ok,
            exit_code=out.exit_code,
            error=out.error,
            ms=out.ms,
        )
        if agent.hooks.wants("post_step"):
            agent.hooks.notify(
                "post_step",
                **_step_fields(step),
                **out.model_dump(include={"ok", "exit_code", "timed_out", "error", "ms"}),
                stdout=out.stdout,
                stderr=out.stderr,
            )
        return out

    async def _gate(self, step: StepIn) -> str | None:
        """Why the step must not run, if a pre_step hook vetoes it."""
        hooks = self.agent.hooks
        if not hooks.wants("pre_step"):
            return None
        verdict = await hooks.gate("pre_step", **_step_fields(step), cwd=step.cwd)
        if verdict.allowed:
            return None
        return f"vetoed by pre_step hook {verdict.hook}: {verdict.reason}"

    async def _run_step(self, step: StepIn) -> tuple[RunOutcome, str | None]:
        """Run the step, first rendering its prompt when its template asks for one (then
        its outcome joins the task's context); with the prompt's context note."""
        if not step.uses_prompt():
            return await execute(step), None
        try:
            rendered = await self.prompts.render(step)
        except ConfigError as exc:  # a template that does not render, an unknown counter
            return RunOutcome(False, error=str(exc)), None
        outcome = await execute(step, rendered.prompt)
        await self.prompts.remember(step, outcome)
        if self.agent.store is not None:  # the next step, on another S1, sees this one
            await self.agent.store.flush()
        return outcome, rendered.note()

    def status(self) -> dict[str, object]:
        return {"executors": list(self.executors), "steps": dict(self.steps)}
