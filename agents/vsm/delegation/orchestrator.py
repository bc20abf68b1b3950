"""The orchestrator of a delegated task (hierarchical mode, beside S3's peer-to-peer loop):
plan, run each subtask on an ephemeral worker of a bounded pool, apply the failure policy,
synthesise, audit.

    report = await delegate(bus, spec, WorkerTemplate.s1("cli", connection_args))

Every subtask runs concurrently up to the pool's size; each attempt takes a permit, spawns
a worker, sends it the subtask with its own slice of the context (the task's description
and the subtask's `context`), and stops the worker, in a finally, so the permit comes back
and no worker outlives its attempt. A retry waits its backoff without a permit. Past the
whole task's deadline the running attempts are cancelled (their workers stopped) and the
subtasks not done are reported cancelled. The audit log gets the plan, each subtask's
outcome and the synthesis, under the orchestrator's id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from agents.runtime.audit import AuditLog
from agents.vsm.delegation.plan import MAX_TEXT, PlanError, Subtask, parse_plan, plan_from_steps
from agents.vsm.delegation.policy import FailurePolicy, Next, next_move
from agents.vsm.delegation.pool import WorkerPool
from agents.vsm.delegation.synthesis import Result, concatenate, synthesis_input
from agents.vsm.delegation.worker import Attempt, Worker, WorkerTemplate
from agents.vsm.s1.executors import render_template, run_argv
from agents.vsm.tasks import ExecutorKind, StepIn
from amcp.bus import Bus
from amcp.errors import AmcpError
from netopt.retry import Backoff

__all__ = [
    "DelegationReport",
    "DelegationSpec",
    "SubtaskRun",
    "check_steps",
    "delegate",
    "new_task_id",
    "orchestrator_id",
    "step_for",
]

log = logging.getLogger("agents.vsm.delegation")
ROLE = "orchestrator"  # the role its audit entries carry
RETRIES = Backoff(base_seconds=0.2, cap_seconds=5.0, max_retries=2)  # frozen: safe to share


@dataclass(frozen=True, slots=True)
class DelegationSpec:
    description: str
    steps: tuple[str, ...] = ()
    planner: tuple[str, ...] | None = None  # a cli template: answers the plan as JSON
    synthesiser: tuple[str, ...] | None = None  # a cli template: given every result
    task_id: str = ""
    executor: ExecutorKind = "shell"
    entry_point: str | None = None
    template: tuple[str, ...] | None = None
    cwd: str | None = None
    max_workers: int = 4
    subtask_timeout: float = 60.0
    task_timeout: float | None = None
    on_failure: FailurePolicy = FailurePolicy.RETRY
    backoff: Backoff = RETRIES
    step_fields: dict[str, Any] = field(default_factory=dict)  # more StepIn fields (prompt)


@dataclass(slots=True)
class SubtaskRun:
    """A subtask's progress: its attempts, and how it ended."""

    subtask: Subtask
    index: int
    attempts: list[Attempt] = field(default_factory=list)
    status: str = "pending"  # ok, alternative, skipped, cancelled
    output: str | None = None
    limitation: str | None = None

    @property
    def degraded(self) -> bool:
        return self.status != "ok"

    def report(self) -> dict[str, Any]:
        return {
            "id": self.subtask.id,
            "text": self.subtask.text,
            "status": self.status,
            "degraded": self.degraded,
            "output": self.output,
            "limitation": self.limitation,
            "attempts": [a.report() for a in self.attempts],
        }


@dataclass(slots=True)
class DelegationReport:
    task_id: str
    orchestrator: str
    description: str
    planned_by: str  # "steps" or "planner"
    subtasks: list[SubtaskRun]
    synthesis: str = ""
    synthesised_by: str = "concatenation"
    synthesis_error: str | None = None
    max_workers: int = 0
    peak_workers: int = 0
    timed_out: bool = False
    seconds: float = 0.0
    audited: bool = True

    @property
    def degraded(self) -> list[str]:
        return [r.subtask.id for r in self.subtasks if r.degraded]

    @property
    def success(self) -> bool:
        """Something was achieved: at least one subtask's own output is in the synthesis."""
        return any(r.output is not None for r in self.subtasks)

    def report(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "orchestrator": self.orchestrator,
            "success": self.success,
            "degraded": self.degraded,
            "planned_by": self.planned_by,
            "synthesised_by": self.synthesised_by,
            "synthesis_error": self.synthesis_error,
            "synthesis": self.synthesis,
            "max_workers": self.max_workers,
            "peak_workers": self.peak_workers,
            "timed_out": self.timed_out,
            "seconds": round(self.seconds, 3),
            "audited": self.audited,
            "subtasks": [r.report() for r in self.subtasks],
        }


def _fields(spec: DelegationSpec, text: str, step: str) -> dict[str, str]:
    return {
        "text": text,
        "description": spec.description,
        "task_id": spec.task_id,
        "step": step,
        "cwd": spec.cwd or ".",
    }


async def _ask(spec: DelegationSpec, template: tuple[str, ...], text: str, what: str) -> str:
    """Run the planner or the synthesiser here, as a cli executor; its stdout, or
    PlanError naming what failed."""
    try:
        argv = render_template(list(template), _fields(spec, text, what))
    except ValueError as exc:
        raise PlanError(f"{what}: {exc}") from None
    out = await run_argv(argv, cwd=spec.cwd, timeout=spec.subtask_timeout, max_output=1 << 20)
    if not out.ok:
        detail = out.stderr.strip().splitlines()[-1:] if out.stderr.strip() else []
        why = out.error or f"exit {out.exit_code}"
        raise PlanError(f"{what} failed: {why}" + (f": {detail[0][:200]}" if detail else ""))
    return out.stdout


async def plan(spec: DelegationSpec) -> tuple[tuple[Subtask, ...], str]:
    """The subtasks and who made them; PlanError if there are none to run."""
    if spec.planner:
        return parse_plan(await _ask(spec, spec.planner, spec.description, "planner")), "planner"
    return plan_from_steps(list(spec.steps)), "steps"


def step_for(spec: DelegationSpec, sub: Subtask, index: int, iteration: int, text: str) -> StepIn:
    """The step a worker gets: the subtask's text, and as its description its slice of
    the context (the task's description and the subtask's own context)."""
    context = f"{spec.description}\n\n{sub.context}".strip()[:MAX_TEXT]
    return StepIn(
        task_id=spec.task_id,
        step=index,
        iteration=iteration,
        text=text,
        description=context,
        executor=spec.executor,
        entry_point=spec.entry_point,
        template=list(spec.template) if spec.template else None,
        cwd=spec.cwd,
        timeout=spec.subtask_timeout,
        **spec.step_fields,
    )


def check_steps(spec: DelegationSpec, subtasks: tuple[Subtask, ...] = ()) -> None:
    """PlanError naming the field if a subtask's step (or, with none given, any step of
    the spec) is not one a worker would take: checked before any worker is spawned."""
    for i, sub in enumerate(subtasks or (Subtask("probe", "probe"),)):
        for text in {sub.text, sub.alternative or sub.text}:
            try:
                step_for(spec, sub, i, 1, text)
            except ValueError as exc:
                raise PlanError(f"subtask {sub.id}: {_first_error(exc)}") from None


class _Delegation:
    def __init__(self, bus: Bus, spec: DelegationSpec, template: WorkerTemplate) -> None:
        self.bus = bus
        self.spec = spec
        self.template = template
        self.pool = WorkerPool(spec.max_workers)
        self.log_dir = Path(tempfile.mkdtemp(prefix=f"amcp-delegate-{spec.task_id}-"))
        self.audit: AuditLog | None = None

    async def record(self, event: str, **fields: Any) -> None:
        if self.audit is not None:
            await self.audit.record(event, task=self.spec.task_id, **fields)

    def step(self, run: SubtaskRun, text: str) -> StepIn:
        return step_for(self.spec, run.subtask, run.index, len(run.attempts) + 1, text)

    async def attempt(self, run: SubtaskRun, text: str, alternative: bool) -> Attempt:
        async with self.pool.permit() as slot:
            # the slot's agent where a roster needs one, else a name of its own
            worker_id, key = self.template.identity(slot) or (
                f"w-{self.spec.task_id}-{run.subtask.id}-{len(run.attempts) + 1}",
                None,
            )
            attempt = Attempt(worker_id, text, alternative)
            step = self.step(run, text)
            run.attempts.append(attempt)
            worker = Worker(self.template, worker_id, self.log_dir, key)
            try:
                # the worker runs its own pre_agent_spawn / post_agent_complete hooks (the
                # template's --hook flags): a veto ends its start, and so this attempt
                await worker.spawn(attempt)
                await worker.run(self.bus, step, attempt)
            except (OSError, ValueError, AmcpError) as exc:  # cannot spawn, bus gone
                attempt.error = f"worker {worker_id}: {exc}"
            finally:
                await worker.stop(attempt)
            return attempt

    async def run_subtask(self, run: SubtaskRun) -> None:
        sub, spec = run.subtask, self.spec
        policy = sub.on_failure or spec.on_failure
        text, alternative, failures = sub.text, False, 0
        while True:
            attempt = await self.attempt(run, text, alternative)
            if attempt.ok:
                run.status = "alternative" if alternative else "ok"
                run.output = attempt.output
                break
            failures += not alternative
            move = next_move(
                policy,
                failures=failures,
                retries=spec.backoff.max_retries,
                has_alternative=sub.alternative is not None,
                on_alternative=alternative,
            )
            if move is Next.RETRY:
                await asyncio.sleep(spec.backoff.delay(failures - 1))
            elif move is Next.ALTERNATIVE:
                text, alternative = sub.alternative or text, True
            else:
                run.status = "skipped"
                tries = len(run.attempts)
                run.limitation = (
                    f"subtask {sub.id} skipped after {tries} attempt{'s' * (tries > 1)}: "
                    f"{attempt.error}"
                )
                break
        event = "subtask_degraded" if run.degraded else "subtask_completed"
        await self.record(
            event,
            subtask=sub.id,
            status=run.status,
            attempts=[(a.worker, a.ok, a.error) for a in run.attempts],
            limitation=run.limitation,
        )

    async def synthesise(self, report: DelegationReport) -> None:
        results = [
            Result(r.subtask.id, r.subtask.text, r.output, r.limitation) for r in report.subtasks
        ]
        report.synthesis = concatenate(results)
        if self.spec.synthesiser and report.success:
            text = synthesis_input(self.spec.description, results)
            try:
                report.synthesis = await _ask(self.spec, self.spec.synthesiser, text, "synthesiser")
                report.synthesised_by = "synthesiser"
            except PlanError as exc:  # the concatenation stands, and the report says why
                report.synthesis_error = str(exc)

    async def run(self, report: DelegationReport) -> None:
        spec = self.spec
        tasks = [asyncio.create_task(self.run_subtask(r)) for r in report.subtasks]
        # asyncio.wait, not gather: a cancelled gather cancels every subtask and returns at
        # the first one done, and the finally would cancel the others again, mid-stop
        # (their worker then gets SIGKILL, and a shell executor's children outlive it)
        try:
            _, pending = await asyncio.wait(tasks, timeout=spec.task_timeout)
            report.timed_out = bool(pending)
        finally:
            for t in tasks:  # once each
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)  # workers stopped
        why = "the task's deadline passed" if report.timed_out else "the delegation stopped"
        for r in report.subtasks:
            if r.status == "pending":
                r.status = "cancelled"
                r.limitation = f"subtask {r.subtask.id} cancelled: {why}"
                await self.record("subtask_degraded", subtask=r.subtask.id, status=r.status)


async def delegate(
    bus: Bus, spec: DelegationSpec, template: WorkerTemplate, *, audit: bool = True
) -> DelegationReport:
    """Run a delegated task to its synthesis, audited under the bus's sender id
    (`orchestrator_id` gives the usual one). PlanError (before any worker) when the plan
    cannot be made; after that, every failure is a degraded subtask in the report."""
    if not spec.task_id:
        spec = _with_id(spec)
    started = time.monotonic()
    subtasks, planned_by = await plan(spec)
    orchestrator = bus.sender  # the audit stream keeps an agent's entries from its sender only
    check_steps(spec, subtasks)
    if template.identities and len(template.identities) < spec.max_workers:
        raise PlanError(
            f"{len(template.identities)} worker identities for {spec.max_workers} workers "
            "at once: one each"
        )
    job = _Delegation(bus, spec, template)
    runs = [SubtaskRun(s, i) for i, s in enumerate(subtasks)]
    report = DelegationReport(
        spec.task_id,
        orchestrator,
        spec.description,
        planned_by,
        runs,
        max_workers=spec.max_workers,
    )
    try:
        if audit:
            report.audited = await _open_audit(job, orchestrator)
        await job.record(
            "delegation_planned",
            planned_by=planned_by,
            subtasks=[{"id": s.id, "text": s.text} for s in subtasks],
            max_workers=spec.max_workers,
        )
        await job.run(report)
        await job.synthesise(report)
        report.peak_workers = job.pool.peak
        report.seconds = time.monotonic() - started
        await job.record(
            "delegation_completed",
            success=report.success,
            degraded=report.degraded,
            synthesised_by=report.synthesised_by,
            peak_workers=report.peak_workers,
            timed_out=report.timed_out,
        )
    finally:
        if job.audit is not None:
            await job.audit.close()
        shutil.rmtree(job.log_dir, ignore_errors=True)
    return report


def _first_error(exc: ValueError) -> str:
    """A pydantic error's first complaint as `field: message`, another's text."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    first = errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    msg = first["msg"].removeprefix("Value error, ")
    return f"{where}: {msg}" if where else msg


def _with_id(spec: DelegationSpec) -> DelegationSpec:
    return replace(spec, task_id=new_task_id())


def new_task_id() -> str:
    return f"d{uuid.uuid4().hex[:10]}"


def orchestrator_id(task_id: str) -> str:
    """The id an orchestrator without an identity of its own audits under."""
    return f"orchestrator-{task_id}"


async def _open_audit(job: _Delegation, orchestrator: str) -> bool:
    audit = AuditLog(job.bus, orchestrator, ROLE)
    try:
        await audit.open()
    except Exception as exc:  # no JetStream: the task runs, the report says it is unaudited
        log.warning("delegation not audited: %s", exc)
        with contextlib.suppress(Exception):
            await audit.close()
        return False
    job.audit = audit
    return True
