"""What an extension or a tool may use of the agent it runs on.

An extension gets an AgentHandle in `start`, a tool finds one in its CallContext; neither
sees the Agent itself (its pool, lifecycle, heartbeats and subscriptions stay its own).
`Agent` satisfies the protocol structurally.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, runtime_checkable

from agents.runtime.discovery import MemberStatus
from agents.runtime.hookrunner import HookRunner
from agents.runtime.membership import Membership, Store
from agents.runtime.metrics import AgentMetrics
from amcp.bus import Bus, Message, Subscription
from amcp.tracing import Span

__all__ = ["AgentHandle"]


@runtime_checkable
class AgentHandle(Protocol):
    """A running agent, as its extensions and tools see it."""

    @property
    def id(self) -> str: ...

    @property
    def role(self) -> str: ...

    @property
    def bus(self) -> Bus: ...

    @property
    def store(self) -> Store | None:
        """The agent's CRDT replica (crdt's ContextStore); None until it starts."""

    @property
    def membership(self) -> Membership | None:
        """The replicated member list (records, voters, removal); None until it starts."""

    @property
    def metrics(self) -> AgentMetrics:
        """The agent's Prometheus metrics, which extensions add their observations to."""

    @property
    def calls(self) -> Mapping[str, int]:
        """Outcomes of the agent's pooled calls so far: ok, failed, refused, invalid."""

    @property
    def hooks(self) -> HookRunner:
        """The user's hooks (agents.runtime.hooks): `gate` before an act, `notify` after."""

    def members(self) -> list[MemberStatus]:
        """Every member with its liveness, as this agent sees it."""

    async def record(
        self,
        event: str,
        *,
        then: Callable[[], Awaitable[Any]] | None = None,
        lazy: bool = False,
        span_attributes: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> None:
        """Append to the audit log; `then` is published right behind the entry, a `lazy`
        entry may wait a little to share a stream frame with others; in a trace, the
        entry is a span with `span_attributes`."""

    async def flush_audit(self) -> None:
        """Return once every entry recorded so far is on its way to the cluster log."""

    def span(self, name: str, **attributes: Any) -> AbstractAsyncContextManager[Span | None]:
        """Time a block as a span of the current trace, recorded in the audit log; nothing
        (None) outside a trace."""

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Background work the agent owns; if it dies with an error, the agent fails."""

    async def subscribe(
        self, subject: str, handler: Callable[[Message], Any], *, queue: str | None = None
    ) -> Subscription:
        """A subscription that ends when the agent starts draining."""

    def has_tool(self, name: str) -> bool:
        """Whether the agent serves a tool by this name."""

    async def execute(self, tool: str, raw: Any, *, caller: str, call_id: str) -> Any:
        """Run one of the agent's tools once inside its pool, with `raw` as its input and
        no reply: its output as plain data."""
