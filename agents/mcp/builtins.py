"""The bridge's own tools: the cluster as `amcp members`, `status`, `log`, `ctx` and
`coordinate` show it, through the same calls those commands make.

They are runtime Tools (models, schemas, examples, hints, the same validation messages as
an agent's), run in the bridge itself; the services they use are the bridge's long-lived
ones: its AgentClient, its bus, one in-memory context replica, one Coordinator.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agents.runtime.admin import ClusterView
from agents.runtime.audit import read_cluster_log
from agents.runtime.client import AgentClient
from agents.runtime.tools import NO_INPUT, CallContext, Example, Tool, ToolHints, tool
from agents.vsm.s3.taskloop import VOTE_WAIT
from agents.vsm.tasks import CycleResult, TaskSpec
from amcp.bus import Bus
from amcp.errors import AmcpError
from consensus.cli import to_json
from consensus.coordinator import Coordination, Coordinator
from consensus.model import Urgency, Vote
from crdt.concern import Level
from crdt.store import ContextStore

__all__ = ["PROGRESS", "CoordinateIn", "Services", "builtin_tools", "coordinate"]

Progress = Callable[[float, float | None, str | None], Awaitable[None]]

PROGRESS: ContextVar[Progress | None] = ContextVar("amcp_mcp_progress", default=None)
"""The running call's progress reporter: set when the client sent a progress token."""

TASK_POLL = 0.5  # seconds between looks at the audit log while a task runs
TASK_LOG_WINDOW = 500  # the last entries read each time (a busy cluster's step may slip by)


async def report(done: float, total: float | None, message: str) -> None:
    progress = PROGRESS.get()
    if progress is not None:
        await progress(done, total, message)


@dataclass
class Services:
    bus: Bus
    client: AgentClient
    store: ContextStore
    coordinator: Coordinator


class Nothing(BaseModel):
    """No input."""


class Member(BaseModel):
    id: str
    role: str
    state: str
    liveness: str
    heartbeat_age: float | None = Field(None, description="seconds since its last heartbeat")
    voter: bool
    capabilities: list[str]
    tools: list[str]


class MembersOut(BaseModel):
    cluster: str
    observer: str = Field(description="the agent whose view this is")
    members: list[Member]


class LogIn(BaseModel):
    count: int = Field(50, ge=1, le=1000, description="the last N entries")
    agent: str | None = Field(None, max_length=128, description="only this agent's entries")
    task: str | None = Field(
        None, max_length=128, description="only entries of this task id or tool call id"
    )
    verified_only: bool = Field(
        False, description="only entries whose agent's identity signature verified"
    )


class LogOut(BaseModel):
    entries: list[dict[str, Any]]
    rejected: dict[str, int] = Field(description="stored entries failing verification, by reason")


class GetIn(BaseModel):
    key: str = Field(min_length=1, max_length=128)
    read: Level = Field("local", description="replicas merged before answering")
    timeout: float = Field(2.0, gt=0, le=60)


class SetIn(BaseModel):
    key: str = Field(min_length=1, max_length=128)
    value: Any = Field(description="any JSON value")
    field: str | None = Field(None, max_length=128, description="write this field of an LWW map")
    write: Level = Field("one", description="acknowledgements to wait for")
    timeout: float = Field(2.0, gt=0, le=60)


class IncrIn(BaseModel):
    key: str = Field(min_length=1, max_length=128)
    n: int = Field(1, ge=1, le=2**53, description="how much to add")
    write: Level = Field("one", description="acknowledgements to wait for")
    timeout: float = Field(2.0, gt=0, le=60)


class CtxOut(BaseModel):
    key: str
    value: Any = None
    acks: int | None = None
    needed: int | None = None


class CoordinateIn(BaseModel):
    action: str = Field(min_length=1, max_length=128, description="e.g. restart, deploy")
    payload: dict[str, Any] = Field(default_factory=dict)
    resource: str | None = Field(None, max_length=1024, description="one commit at a time")
    quorum: str = Field("majority", description="majority, all, any, N, 2/3, weighted[:F]")
    urgency: Urgency = Urgency.NORMAL
    timeout: float = Field(5.0, gt=0, le=3600, description="the vote's deadline, seconds")


class CoordinateOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    outcome: str
    summary: dict[str, Any]
    votes: list[dict[str, Any]]


def builtin_tools(services: Services, *, allow_tasks: bool = False) -> list[Tool]:
    """The built-in tools over `services` (amcp_task only with `allow_tasks`)."""
    s = services

    @tool(read_only=True, examples=NO_INPUT)
    async def amcp_members(args: Nothing, ctx: CallContext) -> MembersOut:
        """The cluster's members (role, state, liveness, last heartbeat, voter,
        capabilities, tools) as a live agent sees them: the columns of `amcp members`;
        amcp_status has each member's figures too."""
        view = await s.client.members()
        members = [Member.model_validate(m.model_dump()) for m in view.members]
        return MembersOut(cluster=view.cluster, observer=view.observer, members=members)

    @tool(read_only=True, examples=NO_INPUT)
    async def amcp_status(args: Nothing, ctx: CallContext) -> ClusterView:
        """Cluster status like `amcp status`: every member with its load, calls and rejected
        frames, and the viability metrics and adaptations."""
        return await s.client.members()

    @tool(read_only=True, examples=[Example({"count": 20}), Example({"agent": "s1-a"})])
    async def amcp_log(args: LogIn, ctx: CallContext) -> LogOut:
        """The last entries of the cluster's signed audit log, oldest first, like `amcp
        log`: frames that fail the frame checks are left out and counted; each entry says
        whether its agent's identity signature `verified` (`verified_only` keeps those)."""
        filtered = args.task is not None or args.verified_only
        wanted = None if filtered else args.count  # filter first, then count
        entries, rejected = await read_cluster_log(s.bus, count=wanted, agent=args.agent)
        docs = [
            {"seq": e.stream_seq, "i": e.index, "signer": e.signer, "verified": e.verified}
            | e.record
            for e in entries
            if (args.task is None or args.task in (e.record.get("task"), e.record.get("call")))
            and (e.verified or not args.verified_only)
        ]
        return LogOut(entries=docs[-args.count :], rejected=rejected)

    @tool(read_only=True, examples=[Example({"key": "jobs.done"})])
    async def amcp_ctx_get(args: GetIn, ctx: CallContext) -> CtxOut:
        """One key of the shared context (counters, registers, maps, sets), like `amcp ctx
        get`."""
        value = await s.store.get(args.key, read=args.read, timeout=args.timeout)
        return CtxOut(key=args.key, value=value)

    @tool(
        hints=ToolHints(destructive=True, idempotent=True),
        examples=[Example({"key": "mode", "value": "maintenance"})],
    )
    async def amcp_ctx_set(args: SetIn, ctx: CallContext) -> CtxOut:
        """Write a register of the shared context (or one field of a map with `field`),
        like `amcp ctx set`; the last writer wins."""
        opts = {"write": args.write, "timeout": args.timeout}
        if args.field is None:
            result = await s.store.set(args.key, args.value, **opts)
        else:
            result = await s.store.map_set(args.key, args.field, args.value, **opts)
        return CtxOut(
            key=args.key, value=s.store.local(args.key), acks=result.acks, needed=result.needed
        )

    @tool(examples=[Example({"key": "jobs.done", "n": 1})])
    async def amcp_ctx_incr(args: IncrIn, ctx: CallContext) -> CtxOut:
        """Add N to a replicated counter of the shared context, like `amcp ctx incr`."""
        result = await s.store.incr(args.key, args.n, write=args.write, timeout=args.timeout)
        return CtxOut(
            key=args.key, value=s.store.local(args.key), acks=result.acks, needed=result.needed
        )

    @tool(
        hints=ToolHints(destructive=True),
        examples=[Example({"action": "restart", "payload": {"targets": ["w1"]}, "resource": "w1"})],
    )
    async def amcp_coordinate(args: CoordinateIn, ctx: CallContext) -> CoordinateOut:
        """Put a critical action to a quorum vote of the registered voters, like `amcp
        coordinate`: the outcome (committed, rejected, no_quorum), the tally and every
        vote with its five scores and reason; a committed action with an executor runs."""
        result = await coordinate(s.coordinator, args)
        return CoordinateOut.model_validate(to_json(result))

    tools = [
        amcp_members,
        amcp_status,
        amcp_log,
        amcp_ctx_get,
        amcp_ctx_set,
        amcp_ctx_incr,
        amcp_coordinate,
    ]
    if allow_tasks:

        @tool(
            hints=ToolHints(destructive=True, open_world=True),
            examples=[Example({"description": "say hello", "steps": ["echo hello"]})],
        )
        async def amcp_task(args: TaskSpec, ctx: CallContext) -> CycleResult:
            """Run a task through the VSM loop like `amcp task` (S4 analyses it, S5 decides
            whether it is critical and puts it to a vote, S3 plans, S2 checks conflicts, S1
            runs the steps, S3* audits); the cycle result."""
            wait = args.timeout * len(args.step_texts()) * 4 + VOTE_WAIT + 30
            # the id is chosen here (S3 keeps a given one) so the audit log can be followed
            spec = args if args.id else args.model_copy(update={"id": f"t-{uuid.uuid4().hex[:12]}"})
            running = asyncio.ensure_future(
                s.client.call("s3", "run-task", spec.model_dump(), timeout=wait)
            )
            try:
                if PROGRESS.get() is not None:
                    await follow_task(s.bus, spec.id, running)
                result = await running
            finally:
                running.cancel()
            return CycleResult.model_validate(result.output)

        tools.append(amcp_task)
    return tools


async def follow_task(bus: Bus, task_id: str, running: asyncio.Future[Any]) -> None:
    """One progress notification per audit entry of the task (cycle started, each step
    executed, requeued, audited, completed) until it is done: S3's loop has no hook of its
    own, its signed log says each step. Polled every TASK_POLL seconds."""
    seen: set[tuple[int, int]] = set()
    n = 0
    while not running.done():
        await asyncio.wait({running}, timeout=TASK_POLL)
        try:
            entries, _ = await read_cluster_log(bus, count=TASK_LOG_WINDOW)
        except AmcpError:
            continue  # the log is only for progress: the task's own answer decides
        for e in entries:
            if e.record.get("task") != task_id or (e.stream_seq, e.index) in seen:
                continue
            seen.add((e.stream_seq, e.index))
            n += 1
            step = e.record.get("step")
            where = "" if step is None else f" step {step}"
            await report(n, None, f"{e.agent}: {e.event}{where}")


async def coordinate(coordinator: Coordinator, args: CoordinateIn) -> Coordination:
    """The vote, with one progress notification per ballot counted (in order)."""
    voters = len(coordinator.voters()) or None
    ballots: asyncio.Queue[Vote | None] = asyncio.Queue()

    async def relay() -> None:
        n = 0
        while (vote := await ballots.get()) is not None:
            n += 1
            await report(n, voters, f"ballot {n}: {vote.voter} voted {vote.choice}")

    relaying = asyncio.ensure_future(relay())
    try:
        return await coordinator.coordinate(
            args.action,
            args.payload,
            quorum=args.quorum,
            urgency=args.urgency,
            resource=args.resource,
            timeout=args.timeout,
            on_ballot=ballots.put_nowait,
        )
    finally:
        ballots.put_nowait(None)
        await relaying
