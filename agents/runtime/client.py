"""Calling agents from outside: what `amcp call`, `amcp members` and `amcp status` use.

client = AgentClient(bus)
out = await client.call("s1", "echo", {"text": "hi"})   # a role: any live s1 agent
view = await client.members()                            # any agent answers
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from agents.runtime.admin import ClusterView, Described, Removed
from agents.runtime.subjects import ANY, ROLES, AgentSubjects, call_request, parse_reply
from amcp.bus import Bus, Message
from amcp.errors import AmcpError, NoResponders, RequestTimeout

__all__ = ["AgentClient", "CallResult", "UnknownAgent"]


class UnknownAgent(NoResponders):
    """A call named an agent id that no member of the cluster has."""


class CallResult:
    """A tool's output, the agent that produced it and the call id of its audit entries
    (None from an agent that does not say it)."""

    __slots__ = ("agent", "call", "output")

    def __init__(self, agent: str, output: Any, call: str | None = None) -> None:
        self.agent = agent
        self.output = output
        self.call = call

    def __repr__(self) -> str:
        return f"CallResult(agent={self.agent!r}, output={self.output!r}, call={self.call!r})"


class AgentClient:
    """Tool calls over a Bus by request/reply."""

    def __init__(self, bus: Bus, *, timeout: float = 5.0) -> None:
        self.bus = bus
        self.timeout = timeout
        self.subjects = AgentSubjects(bus.subjects)
        self._targets: dict[str, str] = {}  # target -> subject, checked once

    async def call(
        self,
        target: str,
        tool: str,
        args: Any = None,
        *,
        timeout: float | None = None,
        idempotent: bool = False,
    ) -> CallResult:
        """Call `tool` on an agent id, a role (load-balanced over its live agents) or `any`.

        `idempotent=True` is for a quick read-only tool (describe, members): each attempt
        waits the adaptive timeout of its destination family (RFC 6298, `bus.rtos`), and a
        lost request or reply is retried with jittered backoff behind a circuit breaker
        (`Bus.request_with_retry`), all within `timeout`; "no responders" is final at once.
        Any other call is sent once and waits `timeout`: the agent may have acted, so it is
        never retried blindly.

        Raises the ToolCallError subclass the agent answered with (ToolInputError with the
        validation details, AgentBusy, UnknownTool, ...), NoResponders if no agent serves
        the target (UnknownAgent if no member has that id), RequestTimeout if none answered
        in time, CircuitOpen while an idempotent target keeps failing.
        """
        subject = self._targets.get(target)
        if subject is None:
            subject = self._targets[target] = self.subjects.target(target)
        body = call_request(tool, {} if args is None else args)
        limit = self.timeout if timeout is None else timeout
        try:
            if idempotent:
                attempts = self.bus.request_with_retry(subject, body, retry_no_responders=False)
                reply = await _within(limit, subject, attempts)
            else:
                reply = await self.bus.request(subject, body, timeout=limit)
        except NoResponders:
            raise await self._nobody(target) from None
        agent, output = parse_reply(reply.body)
        call = reply.body.get("call")
        return CallResult(agent, output, call if isinstance(call, str) else None)

    async def _nobody(self, target: str) -> NoResponders:
        """Why nobody serves `target`: for an agent id, the member list (one `any` call)
        tells an id no agent has from a member that is not running."""
        cluster = self.subjects.cluster
        if target in ROLES:
            return NoResponders(
                f"no live {target} agent in cluster {cluster} "
                f"(start one with `amcp-agent --role {target}`)"
            )
        if target == ANY:
            return NoResponders(
                f"no live agent answered in cluster {cluster} "
                "(start one with `amcp-agent --role ROLE`)"
            )
        try:
            view = await self.members()
        except NoResponders:
            return NoResponders(f"no live agent in cluster {cluster}, none with id {target!r}")
        except AmcpError as exc:
            return NoResponders(f"no live agent {target!r} in cluster {cluster} ({exc})")
        member = next((m for m in view.members if m.id == target), None)
        if member is None:
            ids = ", ".join(sorted(m.id for m in view.members)) or "none"
            return UnknownAgent(f"no agent has id {target!r} in cluster {cluster} (members: {ids})")
        return NoResponders(
            f"agent {target!r} is a member of cluster {cluster} but does not answer "
            f"({member.state}, {member.liveness} as {view.observer} sees it)"
        )

    async def describe(self, target: str) -> Described:
        described = await self.call(target, "describe", idempotent=True)
        return Described.model_validate(described.output)

    async def members(self) -> ClusterView:
        """The cluster as one live agent sees it."""
        view = await self.call(ANY, "members", idempotent=True)
        return ClusterView.model_validate(view.output)

    async def remove_member(self, agent_id: str) -> Removed:
        result = await self.call(ANY, "remove-member", {"id": agent_id})
        return Removed.model_validate(result.output)


async def _within(limit: float, subject: str, attempts: Awaitable[Message]) -> Message:
    """The retried request's answer, or RequestTimeout once `limit` seconds have passed."""
    try:
        async with asyncio.timeout(limit):
            return await attempts
    except TimeoutError:
        raise RequestTimeout(f"no verified reply on {subject} within {limit}s") from None
