"""Serving tool calls: what an agent does with each call that reaches it.

A call naming an unknown tool, or a task arriving while the agent takes no new work, is
refused at once. A cheap query (a tool that is not pooled) answers inline; a task runs in
the agent's bounded pool (netopt's Bulkhead): past the running and waiting limits it is
refused at once with a clear error rather than queued without bound.

A call through a queue group (the role's, or `any`) of a tool that is not read-only is
claimed first (amcp.claims), so a recorded frame replayed to the group runs at most once
across it; with no JetStream to claim in, such a call is refused, never run unclaimed.

Apart from the Agent because serving needs nothing of its life but whether it is taking
work: the Agent hands a CallServer the bus, its tools, pool, counters, audit log, metrics
and lifecycle, and subscribes `on_call` once it runs.

A task called in a trace (its request carried a `traceparent`) runs in a span of its own,
`tool.<name>`, recorded in the audit log with its outcome right before the reply goes out
(in the outcome's entry when the tool is audited); cheap queries open none.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from pydantic import BaseModel

from agents.runtime.audit import AuditEvent, AuditLog
from agents.runtime.errors import (
    AgentBusy,
    AgentDraining,
    AgentError,
    ToolCallError,
    ToolFailed,
    Unclaimed,
    UnknownTool,
)
from agents.runtime.handle import AgentHandle
from agents.runtime.hookrunner import HookRunner
from agents.runtime.lifecycle import Lifecycle
from agents.runtime.metrics import AgentMetrics
from agents.runtime.spans import SPAN_EVENT
from agents.runtime.subjects import error_reply, fit_reply, ok_reply, parse_call
from agents.runtime.tools import CallContext, Tool, ToolRegistry
from amcp import Bus, Message
from amcp.errors import AmcpError, ClaimUnavailable
from amcp.familycounts import family_of
from amcp.tracing import Span, SpanRecord, current_span
from netopt.bulkhead import Bulkhead
from netopt.errors import BulkheadFull

__all__ = ["CallServer"]

# the agent's logger: what serving logs reads as the agent's, as it did inside agent.py
log = logging.getLogger("agents.runtime.agent")

# a refusal's error code -> the outcome it counts as; any other error is "failed"
_REFUSED = {"invalid_input": "invalid", "busy": "refused", "unclaimed": "refused"}


def _call_fields(t: Tool, ctx: CallContext) -> dict[str, Any]:
    return {"tool": t.name, "caller": ctx.caller, "call": ctx.call_id}


class CallServer:
    """One agent's tool calls: `on_call` handles each call delivered to it; tasks run in
    the pool and are tracked until they finish (`finish` on drain, `cancel` on failure)."""

    def __init__(
        self,
        agent: AgentHandle,
        *,
        bus: Bus,
        tools: ToolRegistry,
        pool: Bulkhead,
        lifecycle: Lifecycle,
        audit: AuditLog,
        metrics: AgentMetrics,
        calls: dict[str, int],
        hooks: HookRunner | None = None,
    ) -> None:
        self.agent = agent  # what a tool's CallContext hands it
        self.id = agent.id
        self.bus = bus
        self.tools = tools
        self.pool = pool
        self.lifecycle = lifecycle
        self.audit = audit
        self.metrics = metrics
        self.calls = calls  # outcomes of pooled calls, counted here, read by the agent
        self.hooks = hooks  # pre_tool_call / post_tool_call around each pooled call
        self.inflight: set[asyncio.Task[None]] = set()

    async def execute(self, tool: str, raw: Any, *, caller: str, call_id: str) -> Any:
        """Run one tool once inside the pool, with `raw` as its input and no reply or audit
        entry of its own (a voter executing a committed action): its output as plain data.
        Bad input, an unknown tool or a failure raises."""
        t = self.tools.get(tool)
        if t is None:
            raise AgentError(f"agent {self.id} has no tool {tool!r}")
        args = t.parse_input(raw)
        ctx = CallContext(self.agent, caller, t.name, call_id)
        async with self.audit.span(f"execute.{t.name}", caller=caller), self.pool:
            return t.dump_output(await t.handler(args, ctx))

    async def open_claims(self) -> None:
        """Open the claims bucket now, so the first call does not wait for it; without
        JetStream the agent still starts and serves read-only calls."""
        try:
            await self.bus.claims.ensure()
        except ClaimUnavailable as exc:
            log.warning(
                "agent %s: %s; calls through its queue groups that are not read-only are "
                "refused until JetStream answers",
                self.id,
                exc,
            )

    async def on_call(self, msg: Message, group: bool = False) -> None:
        """A call delivered on the agent's own subject, or through a queue group (`group`)."""
        try:
            name, raw = parse_call(msg.body)
            t = self.tools.get(name)
            if t is None:
                raise UnknownTool(
                    f"agent {self.id} has no tool {name!r}; tools: " + ", ".join(self.tools.names())
                )
            if t.pooled and not self.lifecycle.accepting:
                raise AgentDraining(
                    f"agent {self.id} is {self.lifecycle.state} and takes no new work"
                )
        except ToolCallError as exc:
            self.calls["refused"] += 1
            await self._reply(msg, error_reply(self.id, exc))
            return
        claim = group and not t.read_only
        if not t.pooled:  # cheap queries answer inline, even when the pool is full
            await self._serve(t, raw, msg, claim)
            return
        task = asyncio.create_task(self._serve(t, raw, msg, claim))
        self.inflight.add(task)
        task.add_done_callback(self.inflight.discard)

    async def finish(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for the calls in flight; cancel what still runs."""
        if not self.inflight:
            return
        _, pending = await asyncio.wait(set(self.inflight), timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            log.warning(
                "agent %s cancelled %d calls still running after %.1fs",
                self.id,
                len(pending),
                timeout,
            )

    def cancel(self) -> None:
        """Cancel every call in flight (the agent failed)."""
        for task in list(self.inflight):
            task.cancel()

    async def _serve(self, t: Tool, raw: Any, msg: Message, claim: bool = False) -> None:
        started = time.perf_counter()
        ctx = CallContext(self.agent, msg.sender, t.name, msg.msg_id.hex())
        outcome: dict[str, Any] | None = None  # the audit entry of the outcome
        parent = current_span.get() if t.pooled else None
        traced = None
        if parent is not None:  # a task in a trace: its span is current while it runs
            # the subject family, never the subject: exporters name the destination by it
            attributes = {"caller": msg.sender, "family": family_of(msg.subject)}
            name = f"tool.{t.name}"
            traced = Span(parent.child(), parent.span_id, name, self.id, time.time_ns(), attributes)
            token = current_span.set(traced.context)
        try:
            if claim and not await self._claim(msg):
                return  # a replayed copy: counted by the bus as `duplicate`, not answered
            args = t.parse_input(raw)
            if t.pooled:
                self._check_pool()
                if t.audited:
                    await self.audit.record(
                        AuditEvent.TASK_RECEIVED, tool=t.name, call=ctx.call_id, caller=ctx.caller
                    )
                async with self.pool:
                    reply, outcome = await self._run(t, args, ctx)
            else:
                reply, outcome = await self._run(t, args, ctx)
            result = "ok" if reply["ok"] else "failed"
        except ToolCallError as exc:
            result = _REFUSED.get(exc.code, "failed")
            reply = error_reply(self.id, exc)
        except BulkheadFull:
            result = "refused"
            reply = error_reply(self.id, self._busy())
        finally:
            if traced is not None:
                current_span.reset(token)
        if t.pooled:  # tasks, not the runtime's own queries
            self.calls[result] += 1
        self.metrics.call_done(t.name, result, time.perf_counter() - started)
        span: SpanRecord | None = None
        if traced is not None:
            span = traced.end(result)
            if outcome is None or not t.audited:
                outcome = {"event": SPAN_EVENT, "tool": t.name, "call": ctx.call_id}
        elif outcome is None or not t.audited:
            await self._reply(msg, reply)
            return
        # The reply goes out right behind the outcome's log entry (one write to the socket):
        # the log holds the outcome before the caller hears of it.
        event = outcome.pop("event")
        await self.audit.record(event, then=lambda: self._reply(msg, reply), span=span, **outcome)

    async def _run(
        self, t: Tool, args: Any, ctx: CallContext
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Run the handler: the reply, and the audit entry of its outcome. Any exception
        becomes a ToolFailed reply."""
        started = time.perf_counter()
        # not around the runtime's own cheap queries, nor at all for an agent without hooks
        hooks = self.hooks if t.pooled and self.hooks is not None and self.hooks.active else None
        try:
            if hooks is not None and hooks.wants("pre_tool_call"):
                await self._gate(hooks, t, args, ctx)
            output = t.dump_output(await t.handler(args, ctx))
        except Exception as exc:
            if isinstance(exc, ToolCallError):
                error = exc
            elif isinstance(exc, AmcpError):  # a refusal that explains itself
                error = ToolFailed(str(exc))
            else:
                error = ToolFailed(f"{t.name} failed on {self.id}: {type(exc).__name__}: {exc}")
            entry = {"event": AuditEvent.TASK_FAILED, "error": str(error)}
            if hooks is not None:
                hooks.notify("post_tool_call", **_call_fields(t, ctx), ok=False, error=str(error))
            return error_reply(self.id, error), {**entry, "tool": t.name, "call": ctx.call_id}
        ms = round((time.perf_counter() - started) * 1000, 3)
        if hooks is not None:
            hooks.notify("post_tool_call", **_call_fields(t, ctx), ok=True, ms=ms)
        entry = {"event": AuditEvent.TASK_COMPLETED, "tool": t.name, "call": ctx.call_id, "ms": ms}
        return ok_reply(self.id, output, ctx.call_id), entry

    async def _gate(self, hooks: HookRunner, t: Tool, args: Any, ctx: CallContext) -> None:
        """ToolFailed with the reason if a pre_tool_call hook vetoes the call."""
        plain = args.model_dump(mode="json") if isinstance(args, BaseModel) else args
        verdict = await hooks.gate("pre_tool_call", **_call_fields(t, ctx), input=plain)
        if not verdict.allowed:
            raise ToolFailed(f"vetoed by pre_tool_call hook {verdict.hook}: {verdict.reason}")

    async def _claim(self, msg: Message) -> bool:
        """Whether this delivery is the first anywhere in the cluster. Fail closed: with no
        JetStream to ask, the call is refused rather than run unclaimed."""
        try:
            return await self.bus.claim(msg)
        except ClaimUnavailable as exc:
            raise Unclaimed(
                f"agent {self.id} did not run this call: it could not claim it for "
                f"at-most-once delivery across its queue group ({exc}); call an agent by "
                "its id, or retry once JetStream is back"
            ) from None

    def _check_pool(self) -> None:
        pool = self.pool
        if pool.running >= pool.max_concurrent and pool.waiting >= pool.max_waiting:
            raise self._busy()

    def _busy(self) -> AgentBusy:
        pool = self.pool
        return AgentBusy(
            f"agent {self.id} is busy: {pool.running} calls running and {pool.waiting} "
            f"waiting, its limits ({pool.max_concurrent} and {pool.max_waiting}); refused, "
            "try again later or call its role to reach another agent"
        )

    async def _reply(self, msg: Message, body: dict[str, Any]) -> None:
        if msg.reply_to is None:
            return  # a plain publish: nobody waits for an answer
        try:
            # too large or deep for a frame: cut and flagged, or an error reply, never silence
            await msg.respond(fit_reply(self.id, body, self.bus.limits))
        except AmcpError as exc:
            log.warning("agent %s could not reply to %s: %s", self.id, msg.sender, exc)
