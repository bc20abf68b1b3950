"""The runtime's own tools, served by every agent: describe, members, remove-member.

`describe` publishes the agent's tools with their JSON schemas and examples; `members`
answers with the cluster as the agent sees it (what `amcp members` and `amcp status`
print); `remove-member` removes a dead member. They bypass the pool, so an overloaded
agent still answers questions about itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from agents.runtime.audit import AuditEvent
from agents.runtime.errors import MembershipError
from agents.runtime.liveness import Liveness
from agents.runtime.tools import NO_INPUT, CallContext, Example, Tool, tool

if TYPE_CHECKING:
    from agents.runtime.agent import Agent

__all__ = ["ClusterView", "Described", "MemberView", "RemoveMember", "Removed", "admin_tools"]


class Nothing(BaseModel):
    """No input."""


class Described(BaseModel):
    agent: str
    role: str
    tools: list[dict[str, Any]]


class MemberView(BaseModel):
    """One member: its record, its liveness as the answering agent sees it, its figures."""

    id: str
    role: str
    version: str
    state: str
    liveness: str
    phi: float
    capabilities: list[str]
    tools: list[str]
    voter: bool
    host: str
    pid: int
    joined_ms: int
    heartbeat: float
    metrics_port: int | None = None
    last_heartbeat_ms: int | None = None
    heartbeat_age: float | None = None
    stats: dict[str, Any] = Field(default_factory=dict)
    extra: dict[str, Any] = Field(default_factory=dict)


class ClusterView(BaseModel):
    cluster: str
    observer: str  # the agent that answered
    members: list[MemberView]
    viability: dict[str, Any] | None = None  # filled by the VSM loop once it exists
    extensions: dict[str, Any] = Field(default_factory=dict)


class RemoveMember(BaseModel):
    id: str = Field(min_length=1, max_length=64)


class Removed(BaseModel):
    removed: str
    role: str
    liveness: str


def admin_tools(agent: Agent) -> list[Tool]:
    """The three built-in tools of `agent`."""

    @tool(pooled=False, audited=False, read_only=True, examples=NO_INPUT)
    async def describe(args: Nothing, ctx: CallContext) -> Described:
        """This agent's tools: description, input and output JSON schemas, examples."""
        return Described(agent=agent.id, role=agent.role, tools=agent.tools.specs())

    @tool(pooled=False, audited=False, read_only=True, examples=NO_INPUT)
    async def members(args: Nothing, ctx: CallContext) -> ClusterView:
        """Every member with role, lifecycle state, liveness, last heartbeat and figures."""
        viability = None
        for extension in agent.extensions:
            viability = viability or extension.viability()
        return ClusterView(
            cluster=agent.bus.cluster,
            observer=agent.id,
            members=[MemberView(**m.to_wire()) for m in agent.members()],
            viability=viability,
            extensions={e.name: s for e in agent.extensions if (s := e.status())},
        )

    @tool(
        "remove-member",
        pooled=False,
        audited=False,
        examples=[Example({"id": "s1-3f2a9c01"})],
    )
    async def remove_member(args: RemoveMember, ctx: CallContext) -> Removed:
        """Remove a crashed member from the member list. A live or suspect member is
        refused: stop it instead (it leaves by itself)."""
        if agent.membership is None:
            raise MembershipError(f"agent {agent.id} is not a member yet")
        status = {m.record.id: m for m in agent.members()}.get(args.id)
        if status is None:
            raise MembershipError(f"{args.id} is not a member")
        if status.liveness is not Liveness.DEAD:
            raise MembershipError(
                f"{args.id} is {status.liveness} (as {agent.id} sees it); only a dead member "
                "can be removed; stop it with SIGTERM and it leaves by itself"
            )
        await agent.membership.remove(args.id)
        await agent.record(AuditEvent.MEMBER_REMOVED, member=args.id, by=ctx.caller)
        return Removed(removed=args.id, role=status.record.role, liveness=status.liveness)

    return [describe, members, remove_member]
