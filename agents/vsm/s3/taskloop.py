"""The task loop, as S3 runs it across the cluster: S4 analyses, S5 classifies (and puts a
critical action to a quorum vote), S3 allocates (S5 resolving conflicts with S4's view),
S2 coordinates each step, S1 agents run the steps (in parallel where the plan allows),
S3* audits, and a failed audit starts another iteration, up to S4's limit.

Every stage writes its audit entry to the cluster log before the next agent acts, so the
log of one task reads S3, S4, S3, S1, S3 in order. In a trace each stage is a span of S3's
(loop.analyse, loop.authorise, loop.allocate, loop.step, loop.audit) with the other roles'
spans under it. An S1 agent that dies mid-step (its
liveness turns dead, or it is gone from the bus) has its step re-queued to another S1;
an S1 that is alive but slow is never given the step twice, so a step completes once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from agents.runtime.client import CallResult
from agents.runtime.errors import AgentBusy, AgentDraining, ToolCallError
from agents.runtime.liveness import Liveness
from agents.vsm.s1.executors import EXECUTORS, KILL_GRACE
from agents.vsm.s2.role import ArbiterRulingOut
from agents.vsm.s3.allocation import Allocation, Candidate, Need, allocate
from agents.vsm.s3.audit_checks import AuditVerdict, audit
from agents.vsm.s3.cycle import Cycle
from agents.vsm.s3.host import TaskLoopHost
from agents.vsm.s4.analysis import TaskAnalysis
from agents.vsm.s5.role import ClassifyOut, PolicyRulingOut, VoteOut
from agents.vsm.tasks import CycleResult, StepIn, StepOut, TaskSpec
from agents.vsm.viability import (
    AUDITS_FAILED,
    AUDITS_PASSED,
    CONFLICTS,
    FINISHED,
    ITERATIONS,
    SUCCEEDED,
)
from amcp.errors import AmcpError, NoResponders, RequestTimeout

__all__ = ["TaskLoop"]

log = logging.getLogger("agents.vsm.s3.taskloop")

MAX_REQUEUES = 3  # other S1 agents tried for one step after its agent died
VOTE_WAIT = 60.0  # seconds S3 waits for S5's authorisation (the vote has its own deadline)
CALL_WAIT = 10.0  # seconds S3 waits for S2, S4 and S5 answers


Reply = TypeVar("Reply", bound=BaseModel)


class _Stop(Exception):
    """The cycle ends here, unsuccessfully, for the reason given."""


def _read(model: type[Reply], result: CallResult, tool: str) -> Reply:
    """The reply as the tool declares it; one that does not fit ends the cycle."""
    try:
        return model.model_validate(result.output)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"])) or "the reply"
        more = f" and {exc.error_count() - 1} more" if exc.error_count() > 1 else ""
        raise _Stop(
            f"{result.agent} answered {tool} with a malformed reply ({where}: {first['msg']}{more})"
        ) from None


class TaskLoop:
    """The cycles of one S3 agent."""

    def __init__(self, host: TaskLoopHost) -> None:
        self.host = host
        self.agent_id = host.config.agent_id
        self.inflight: dict[str, int] = {}

    async def call(self, target: str, tool: str, args: Any, timeout: float) -> CallResult:
        return await self.host.client.call(target, tool, args, timeout=timeout)

    # -- the cycle ------------------------------------------------------------------------

    async def run(self, spec: TaskSpec) -> CycleResult:
        task = spec.with_id()
        c = Cycle(task)
        await self.host.log(
            "cycle_started",
            task=task.id,
            description=task.description[:200],
            steps=len(task.step_texts()),
            executor=task.executor,
        )
        c.note(self.agent_id, "took the task")
        try:
            success, summary = await self._cycle(c)
        except _Stop as stop:
            success, summary = False, str(stop)
        except Exception as exc:  # every cycle is counted and logged, whatever went wrong
            log.exception("cycle of %s failed", task.id)
            success, summary = False, f"the loop failed: {type(exc).__name__}: {exc}"
        await self.host.count(FINISHED)
        await self.host.count(SUCCEEDED, int(success))
        await self.host.count(ITERATIONS, c.iterations)
        adaptations = [a.to_wire() for _, a in sorted(self.host.adaptations().items())]
        result = c.result(success, summary, adaptations)
        await self.host.log(
            "cycle_completed",
            task=task.id,
            success=success,
            iterations=c.iterations,
            summary=summary[:500],
        )
        return result

    async def _cycle(self, c: Cycle) -> tuple[bool, str]:
        task = c.task
        span = self.host.span
        async with span("loop.analyse", task=task.id):
            analysis = c.analysis = await self._analyse(c)
        async with span("loop.authorise", task=task.id):
            await self._authorise(c, analysis)
        pending = list(range(len(task.step_texts())))
        for iteration in range(1, analysis.approach.max_iterations + 1):
            c.iterations = iteration
            async with span("loop.allocate", task=task.id, iteration=iteration):
                allocation = await self._allocate(c, analysis, pending, iteration)
            for group in allocation.groups:
                await asyncio.gather(
                    *(
                        self._step(c, analysis, pending[i], allocation.agents[i], iteration)
                        for i in group
                    )
                )
            async with span("loop.audit", task=task.id, iteration=iteration):
                verdict = c.verdict = await self._audit(c, analysis, iteration)
            if verdict.passed:
                workers = ", ".join(dict.fromkeys(o.agent for o in c.outs.values()))
                again = f" after {iteration} iterations" if iteration > 1 else ""
                steps = len(c.outs)
                return (
                    True,
                    f"{steps} step{'s' * (steps > 1)} ran on {workers}; audit passed{again}",
                )
            failed = [i for i in pending if not c.outs[i].ok]
            pending = failed or pending  # a failed check reruns every step
        assert c.verdict is not None
        rounds = f"{c.iterations} iteration{'s' * (c.iterations > 1)}"
        return False, f"audit failed after {rounds}: " + "; ".join(c.verdict.failures[:3])

    # -- S4, S5 ---------------------------------------------------------------------------

    async def _ask(
        self, c: Cycle, role: str, tool: str, args: Any, timeout: float, reply: type[Reply]
    ) -> tuple[str, Reply]:
        """Call a role that the loop cannot do without: the agent that answered, and its
        reply as `reply`."""
        try:
            result = await self.call(role, tool, args, timeout)
        except NoResponders:
            raise _Stop(f"no live {role} agent to {tool} the task") from None
        except (RequestTimeout, ToolCallError) as exc:
            raise _Stop(f"{role} could not {tool} the task: {exc}") from None
        c.agents.setdefault(result.agent, None)
        return result.agent, _read(reply, result, tool)

    async def _analyse(self, c: Cycle) -> TaskAnalysis:
        agent, a = await self._ask(c, "s4", "analyse", c.task.model_dump(), CALL_WAIT, TaskAnalysis)
        c.note(
            agent,
            f"analysed: {a.complexity} (score {a.score:g}), risk {a.risk_level}, "
            f"approach {a.approach.mode}"
            + (f", domains {', '.join(a.domains)}" if a.domains else ""),
        )
        return a

    async def _authorise(self, c: Cycle, analysis: TaskAnalysis) -> None:
        texts = [c.task.description, *c.task.steps]
        args = {"texts": texts, "analysis": analysis.model_dump()}
        s5, classified = await self._ask(c, "s5", "classify", args, CALL_WAIT, ClassifyOut)
        reasons = "; ".join(classified.reasons)
        if not classified.critical:
            c.note(s5, f"not critical ({reasons})")
            return
        c.critical = True
        action = classified.action
        c.note(s5, f"critical ({reasons})")
        vote_args = {
            "task_id": c.task.id,
            "action": action,
            "description": c.task.description,
            "urgency": c.task.urgency,
            "resource": c.task.resource,
        }
        voter, vote = await self._ask(c, s5, "authorise", vote_args, VOTE_WAIT, VoteOut)
        c.vote = vote.model_dump()
        tally = f"{vote.yes} yes, {vote.no} no, {vote.abstain} abstain of " + (
            f"{len(vote.members)} voters; {vote.needed:g} needed"
        )
        c.note(voter, f"put {action} to a {vote.quorum} vote: {vote.outcome} ({tally})")
        if not vote.committed:
            raise _Stop(f"critical action {action} not executed: {vote.outcome} ({tally})")

    # -- S3: allocation and conflicts -----------------------------------------------------

    def candidates(self) -> list[Candidate]:
        review = set(self.host.under_review())
        out = []
        for m in self.host.view():
            record = m.record
            if record.role != "s1" or m.liveness is not Liveness.ALIVE or m.state != "running":
                continue
            load = m.stats.get("load") or {}
            executors = record.extra.get("executors") or EXECUTORS
            out.append(
                Candidate(
                    id=record.id,
                    executors=frozenset(executors),
                    capabilities=frozenset(record.capabilities),
                    running=max(int(load.get("running", 0)), self.inflight.get(record.id, 0)),
                    capacity=int(load.get("max_running", 1) or 1),
                    under_review=record.id in review,
                )
            )
        return out

    async def _allocate(
        self, c: Cycle, analysis: TaskAnalysis, pending: Sequence[int], iteration: int
    ) -> Allocation:
        need = Need(
            steps=len(pending),
            executor=c.task.executor,
            preferred=analysis.approach.capabilities,
            required=analysis.approach.required,
            parallel=analysis.approach.parallel,
            parallelise=self.host.active("parallelise"),
        )
        allocation = allocate(need, self.candidates())
        if not allocation.agents:
            raise _Stop("; ".join(allocation.notes))
        for conflict in allocation.conflicts:
            await self.host.count(CONFLICTS)
            args = {
                "task_id": c.task.id,
                "conflict": conflict.to_wire(),
                "analysis": analysis.model_dump(),
            }
            s5, ruling = await self._ask(c, "s5", "resolve", args, CALL_WAIT, PolicyRulingOut)
            c.conflicts.append({**conflict.to_wire(), "resolution": ruling.model_dump()})
            c.note(s5, f"resolved the {conflict.kind} conflict: {ruling.reason}")
            if ruling.side == "s4" and conflict.kind == "capability":
                raise _Stop(f"refused: S4 {conflict.s4}; S5: {ruling.reason}")
            if ruling.side == "s4" and conflict.kind == "ordering":
                allocation = allocation.in_order()
        if self.host.active("s5_approval"):
            args = {
                "task_id": c.task.id,
                "analysis": analysis.model_dump(),
                "agents": list(allocation.agents),
            }
            s5, approval = await self._ask(
                c, "s5", "approve-allocation", args, CALL_WAIT, PolicyRulingOut
            )
            c.note(s5, f"allocation: {approval.reason}")
            if not approval.ok:
                raise _Stop(f"S5 refused the allocation: {approval.reason}")
        mode = "at once" if allocation.parallel else "in order"
        placed = ", ".join(f"step {pending[i] + 1} -> {a}" for i, a in enumerate(allocation.agents))
        c.note(self.agent_id, f"allocated (iteration {iteration}, {mode}): {placed}")
        await self.host.log(
            "allocated",
            task=c.task.id,
            iteration=iteration,
            agents=list(allocation.agents),
            steps=[pending[i] for i in range(len(allocation.agents))],
            parallel=allocation.parallel,
            notes=list(allocation.notes),
        )
        return allocation

    # -- S2 and S1: one step --------------------------------------------------------------

    def _resource(self, task: TaskSpec) -> str | None:
        if task.resource:
            return f"{task.cwd or '.'}::{task.resource}"
        return task.cwd or "." if self.host.active("more_s2") else None

    async def _coordinate(
        self, c: Cycle, holder: str, attempt: str, resource: str | None
    ) -> str | None:
        """Wait for S2's go; the reason if the step must not run. Without S2, go at once."""
        s2 = self.host.leader("s2")
        if s2 is None:
            return None
        args = {
            "holder": holder,
            "fingerprint": c.task.fingerprint(),
            "attempt": attempt,
            "resource": resource,
            "lease": c.task.timeout + KILL_GRACE + 5,
            "first": True,
        }
        deadline = time.monotonic() + c.task.timeout
        while True:
            try:
                result = await self.call(s2, "claim", args, CALL_WAIT)
            except AmcpError as exc:
                c.note(self.agent_id, f"S2 unavailable ({exc}); step uncoordinated")
                return None
            c.agents.setdefault(result.agent, None)
            ruling = _read(ArbiterRulingOut, result, "claim")
            if ruling.oscillation:
                c.damping.append({"holder": holder, **ruling.model_dump()})
                c.note(result.agent, f"{ruling.oscillation}: {ruling.reason}")
            if ruling.decision == "grant":
                step = int(holder.split(":")[1]) + 1
                c.note(result.agent, f"step {step} may start ({ruling.reason})")
                return None
            if ruling.decision == "escalate":
                return await self._escalate(c, ruling.reason)
            if time.monotonic() + ruling.delay > deadline:
                return f"damped: still waiting for S2 after {c.task.timeout:g}s ({ruling.reason})"
            await asyncio.sleep(ruling.delay)
            args["first"] = False

    async def _escalate(self, c: Cycle, why: str) -> str | None:
        args = {"task_id": c.task.id, "why": why}
        s5, ruling = await self._ask(c, "s5", "escalate", args, CALL_WAIT, PolicyRulingOut)
        c.note(s5, f"escalation: {ruling.reason}")
        return None if ruling.ok else f"damped: {ruling.reason}"

    async def _step(
        self, c: Cycle, analysis: TaskAnalysis, index: int, worker: str, iteration: int
    ) -> None:
        attributes = {"task": c.task.id, "step": index, "iteration": iteration}
        async with self.host.span("loop.step", **attributes):
            await self._run_step(c, index, worker, iteration)

    async def _run_step(self, c: Cycle, index: int, worker: str, iteration: int) -> None:
        task = c.task
        holder = f"{task.id}:{index}:{iteration}"
        resource = self._resource(task)
        stopped = await self._coordinate(c, holder, f"{task.id}:{iteration}", resource)
        if stopped is not None:
            c.outs[index] = StepOut(
                task_id=task.id, step=index, agent=worker, ok=False, error=stopped
            )
            return
        step = StepIn(
            **task.model_dump(include=set(StepIn.model_fields) - {"step", "text"}),
            task_id=task.id,
            step=index,
            iteration=iteration,
            text=task.step_texts()[index],
        )
        out = await self._run_requeued(c, step, worker)
        c.outs[index] = out
        verb = "ran" if out.ok else "failed"
        c.note(
            out.agent,
            f"{verb} step {index + 1} ({out.error or f'exit {out.exit_code}'}, {out.ms:g} ms)",
        )
        s2 = self.host.leader("s2")
        if s2 is not None:
            args = {
                "holder": holder,
                "resource": resource,
                "digest": out.digest,
                "fingerprint": task.fingerprint(),
                "ok": out.ok,
            }
            try:
                result = await self.call(s2, "release", args, CALL_WAIT)
            except AmcpError:
                return  # the lease expires by itself
            released = _read(ArbiterRulingOut, result, "release")
            if released.oscillation:
                c.damping.append({"holder": holder, **released.model_dump()})
                c.note(s2, f"{released.oscillation}: {released.reason}")

    async def _run_requeued(self, c: Cycle, step: StepIn, worker: str) -> StepOut:
        """Run a step on `worker`; if it dies or refuses before running it, on another."""
        tried: set[str] = set()
        for _ in range(MAX_REQUEUES + 1):
            out = await self._dispatch(worker, step)
            if isinstance(out, StepOut):
                return out
            tried.add(worker)
            need = Need(steps=1, executor=step.executor, exclude=frozenset(tried))
            nxt = allocate(need, self.candidates())
            c.requeued.append({"step": step.step, "from": worker, "why": out})
            await self.host.log(
                "requeued", task=step.task_id, step=step.step, worker=worker, why=out
            )
            if not nxt.agents:
                c.note(self.agent_id, f"step {step.step + 1}: {out}; no other S1 left")
                return StepOut(
                    task_id=step.task_id,
                    step=step.step,
                    agent=worker,
                    ok=False,
                    error=f"{out}; no other S1 agent to take it",
                )
            c.note(self.agent_id, f"step {step.step + 1}: {out}; re-queued to {nxt.agents[0]}")
            worker = nxt.agents[0]
        return StepOut(
            task_id=step.task_id,
            step=step.step,
            agent=worker,
            ok=False,
            error=f"re-queued {MAX_REQUEUES} times; giving up",
        )

    def _lost(self, agent_id: str) -> str | None:
        """Why `agent_id` can no longer finish a step, if it cannot. An agent that left is
        not lost: a graceful stop leaves first and then finishes its calls in flight."""
        for m in self.host.view():
            if m.record.id == agent_id:
                if m.liveness is Liveness.DEAD:
                    return f"{agent_id} died mid-step"
                if m.state == "failed":
                    return f"{agent_id} failed mid-step"
        return None

    async def _dispatch(self, worker: str, step: StepIn) -> StepOut | str:
        """The step's outcome, or why it never ran (so it may go to another agent)."""
        self.inflight[worker] = self.inflight.get(worker, 0) + 1
        wait = step.timeout + KILL_GRACE + CALL_WAIT
        call = asyncio.ensure_future(self.call(worker, "execute", step.model_dump(), wait))
        poll = self.host.config.heartbeat
        try:
            while not call.done():
                await asyncio.wait({call}, timeout=poll)
                if not call.done() and (lost := self._lost(worker)) is not None:
                    return lost
            try:
                return _read(StepOut, call.result(), "execute")
            except NoResponders:
                return f"{worker} is not on the bus"
            except (AgentBusy, AgentDraining) as exc:
                return f"{worker} refused: {exc}"
            except (RequestTimeout, ToolCallError) as exc:
                return StepOut(
                    task_id=step.task_id, step=step.step, agent=worker, ok=False, error=str(exc)
                )
        finally:
            call.cancel()
            self.inflight[worker] -= 1

    # -- S3* ------------------------------------------------------------------------------

    async def _audit(self, c: Cycle, analysis: TaskAnalysis, iteration: int) -> AuditVerdict:
        workers = {o.agent for o in c.outs.values()}
        reviewed = sorted(workers & set(self.host.under_review()))
        strict = self.host.active("tighten_audits") or analysis.approach.review or bool(reviewed)
        c.check = None
        if c.task.check and all(o.ok for o in c.outs.values()):
            c.check = await self._check(c, workers, iteration)
        verdict = audit([c.outs[i] for i in sorted(c.outs)], c.check, strict=strict)
        await self.host.count(AUDITS_PASSED if verdict.passed else AUDITS_FAILED)
        why = [
            "strict" if strict else "normal",
            *(["tighten_audits"] if self.host.active("tighten_audits") else []),
            *([f"review of {', '.join(reviewed)}"] if reviewed else []),
            *(["check " + c.check.agent] if c.check else []),
        ]
        result = "passed" if verdict.passed else "failed: " + "; ".join(verdict.failures[:3])
        c.path.append(f"{self.agent_id} (S3*): audited ({', '.join(why)}): {result}")
        await self.host.log(
            "audited",
            task=c.task.id,
            iteration=iteration,
            passed=verdict.passed,
            strict=strict,
            reviewed=reviewed,
            failures=list(verdict.failures),
        )
        return verdict

    async def _check(self, c: Cycle, workers: set[str], iteration: int) -> StepOut:
        """Run the task's check command on an S1 agent, another than the workers if any."""
        pool = self.candidates()
        others = [x for x in pool if x.id not in workers and "shell" in x.executors]
        nxt = allocate(Need(steps=1, executor="shell"), others or pool)
        if not nxt.agents:
            return StepOut(
                task_id=c.task.id,
                step=-1,
                agent=self.agent_id,
                ok=False,
                error="no S1 agent to run the check",
            )
        step = StepIn(
            task_id=c.task.id,
            step=-1,
            iteration=iteration,
            text=c.task.check or "",
            cwd=c.task.cwd,
            timeout=c.task.timeout,
        )
        out = await self._dispatch(nxt.agents[0], step)
        if isinstance(out, str):
            return StepOut(task_id=c.task.id, step=-1, agent=nxt.agents[0], ok=False, error=out)
        c.agents.setdefault(out.agent, None)
        return out
