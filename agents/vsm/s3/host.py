"""What the task loop needs of the S3 agent that runs it, and no more: `ControlRole` is
one such host, a test's scripted stand-in another."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from agents.runtime.client import AgentClient
    from agents.runtime.config import AgentConfig
    from agents.runtime.discovery import MemberStatus
    from agents.vsm.adaptation import Adaptation
    from amcp.tracing import Span

__all__ = ["TaskLoopHost"]


class TaskLoopHost(Protocol):
    """The agent's config (its id; its heartbeat paces the watch on a step's worker), a
    client to call the other roles, the audit log (entries, and spans of the loop's steps
    in a trace) and counters, the adaptations and the members it sees."""

    config: AgentConfig

    @property
    def client(self) -> AgentClient: ...

    async def log(self, event: str, **fields: Any) -> None: ...

    def span(self, name: str, **attributes: Any) -> AbstractAsyncContextManager[Span | None]: ...

    async def count(self, key: str, n: int = 1) -> None: ...

    def adaptations(self) -> dict[str, Adaptation]: ...

    def active(self, kind: str, target: str = "") -> bool: ...

    def under_review(self) -> list[str]: ...

    def view(self) -> list[MemberStatus]: ...

    def leader(self, role: str) -> str | None: ...
