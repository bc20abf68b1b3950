"""The runtime's own tools, served by every agent: describe, members, remove-member.

`describe` publishes the agent's tools with their JSON schemas and examples; `members`
answers with the cluster as the agent sees it (what `amcp members` and `amcp status`
print); `remove-member` removes a dead member. They bypass the pool, so an overloaded
agent still answers questions about itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from agents.runtime.audit import AuditEvent
from agents.runtime.errors import MembershipError
from agents.runtime.extension import Extension
from agents.runtime.handle import AgentHandle
from agents.runtime.liveness import Liveness
from agents.runtime.tools import NO_INPUT, CallContext, Example, Tool, ToolRegistry, tool

__all__ = [
    "ClusterView",
    "Described",
    "MemberView",
    "Nothing",
    "RemoveMember",
    "Removed",
    "admin_tools",
    "cluster_sections",
]


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
    """The cluster as one agent sees it. Its extensions' cluster-wide sections (a VSM
    role's `viability`) are further keys, read with `section(name)`."""

    model_config = ConfigDict(extra="allow")

    cluster: str
    observer: str  # the agent that answered
    members: list[MemberView]
    extensions: dict[str, Any] = Field(default_factory=dict)  # each one's own figures

    def section(self, name: str) -> Any:
        """A cluster-wide section by name; None if no extension gave it."""
        return (self.model_extra or {}).get(name)

    @model_serializer(mode="wrap")
    def _sections_first(self, dump: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # the sections before `extensions`, in the order `amcp status --json` always printed
        doc: dict[str, Any] = dump(self)
        if "extensions" in doc:
            doc["extensions"] = doc.pop("extensions")
        return doc


class RemoveMember(BaseModel):
    id: str = Field(min_length=1, max_length=64)


class Removed(BaseModel):
    removed: str
    role: str
    liveness: str


def cluster_sections(extensions: Sequence[Extension]) -> dict[str, Any]:
    """The extensions' cluster-wide sections by name, the first with a value winning."""
    sections: dict[str, Any] = {}
    for extension in extensions:
        for name, value in extension.sections().items():
            if not sections.get(name):
                sections[name] = value
    return sections


def admin_tools(
    agent: AgentHandle, tools: ToolRegistry, extensions: Sequence[Extension]
) -> list[Tool]:
    """The three built-in tools of `agent`, which serves `tools` and runs `extensions`."""

    @tool(pooled=False, audited=False, read_only=True, examples=NO_INPUT)
    async def describe(args: Nothing, ctx: CallContext) -> Described:
        """This agent's tools: description, input and output JSON schemas, examples."""
        return Described(agent=agent.id, role=agent.role, tools=tools.specs())

    @tool(pooled=False, audited=False, read_only=True, examples=NO_INPUT)
    async def members(args: Nothing, ctx: CallContext) -> ClusterView:
        """Every member with role, lifecycle state, liveness, last heartbeat and figures."""
        return ClusterView(
            cluster=agent.bus.cluster,
            observer=agent.id,
            members=[MemberView(**m.to_wire()) for m in agent.members()],
            extensions={e.name: s for e in extensions if (s := e.status())},
            **cluster_sections(extensions),
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
