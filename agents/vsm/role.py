"""What the five VSM roles share: the `vsm.` context, viability and active adaptations.

Every role keeps a copy of its replica's `vsm.` keys (filled on start, kept current by a
watch), so the viability metrics and the active adaptations it reports are those of the
replicated state: the same on every agent once the replicas have converged. Every role
serves `viability`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from agents.runtime.admin import Nothing
from agents.runtime.client import AgentClient
from agents.runtime.extension import Role
from agents.runtime.liveness import Liveness
from agents.runtime.tools import NO_INPUT, CallContext, Tool, tool
from agents.vsm.adaptation import Adaptation
from agents.vsm.s5.vote import record_now
from agents.vsm.viability import ADAPTATIONS, PREFIX, measure
from amcp.settings import env_number

if TYPE_CHECKING:
    from agents.runtime.config import AgentConfig
    from agents.runtime.discovery import MemberStatus
    from agents.runtime.handle import AgentHandle
    from amcp.tracing import Span

__all__ = ["ViabilityOut", "VsmRole", "VsmSettings"]

WINDOW = 20
INTERVAL = 0.5
VIEW_TTL = 0.05


@dataclass(frozen=True, slots=True)
class VsmSettings:
    """Knobs of the loop, from the environment (so `amcp-agent` needs no new flags)."""

    window: int = WINDOW  # AMCP_VSM_WINDOW: tasks between viability window checkpoints
    interval: float = INTERVAL  # AMCP_VSM_INTERVAL: seconds between adaptation rounds

    @classmethod
    def from_env(cls) -> VsmSettings:
        return cls(
            window=int(env_number("AMCP_VSM_WINDOW", WINDOW, 1)),
            interval=env_number("AMCP_VSM_INTERVAL", INTERVAL, 0.01),
        )


class ViabilityOut(BaseModel):
    agent: str
    metrics: dict[str, Any]
    adaptations: list[dict[str, Any]] = Field(default_factory=list)


class VsmRole(Role):
    """The base of S1 to S5."""

    def __init__(self, config: AgentConfig) -> None:
        super().__init__(config)
        self.settings = VsmSettings.from_env()
        self.values: dict[str, Any] = {}
        self._agent: AgentHandle | None = None
        self._view: tuple[float, list[MemberStatus]] | None = None
        self._client: AgentClient | None = None

    # -- what the roles use -------------------------------------------------------------

    @property
    def agent(self) -> AgentHandle:
        if self._agent is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._agent

    @property
    def client(self) -> AgentClient:
        if self._client is None:
            self._client = AgentClient(self.agent.bus)
        return self._client

    def role_tools(self) -> Iterable[Tool]:
        """A role's own tools (beside viability)."""
        return ()

    async def on_start(self) -> None:
        """A role's own start, once the `vsm.` values are loaded."""

    async def log(self, event: str, **fields: Any) -> None:
        """An audit entry on its way to the cluster log before this role acts again."""
        await record_now(self.agent, event, **fields)

    def span(self, name: str, **attributes: Any) -> AbstractAsyncContextManager[Span | None]:
        """A span of the current trace around a step of this role's, in the audit log."""
        return self.agent.span(name, **attributes)

    async def count(self, key: str, n: int = 1) -> None:
        """Add to a replicated counter (local write; the replicator spreads it)."""
        if n > 0:
            await self.agent.store.incr(key, n)  # type: ignore[union-attr]

    def adaptations(self) -> dict[str, Adaptation]:
        """The active adaptations, by key, as this replica holds them."""
        doc = self.values.get(ADAPTATIONS)
        if not isinstance(doc, dict):
            return {}
        found = {k: Adaptation.from_wire(v) for k, v in doc.items()}
        return {k: a for k, a in found.items() if a is not None}

    def active(self, kind: str, target: str = "") -> bool:
        return (f"{kind}:{target}" if target else kind) in self.adaptations()

    def under_review(self) -> list[str]:
        return sorted(a.target for a in self.adaptations().values() if a.kind == "review")

    def view(self) -> list[MemberStatus]:
        """The members as this agent sees them, recomputed at most every VIEW_TTL seconds
        (liveness moves with heartbeats; a busy loop need not rebuild it per call)."""
        now = time.monotonic()
        if self._view is None or now - self._view[0] > VIEW_TTL:
            self._view = (now, self.agent.members())
        return self._view[1]

    def live(self, role: str) -> list[str]:
        """The ids of `role` members this agent sees alive and running, sorted."""
        return sorted(
            m.record.id
            for m in self.view()
            if m.record.role == role and m.liveness is Liveness.ALIVE and m.state == "running"
        )

    def leader(self, role: str) -> str | None:
        """The live member of `role` with the lowest id: where stateful work goes."""
        ids = self.live(role)
        return ids[0] if ids else None

    # -- Extension ------------------------------------------------------------------------

    def tools(self) -> Iterable[Tool]:
        role = self

        @tool(pooled=False, audited=False, read_only=True, examples=NO_INPUT)
        async def viability(args: Nothing, ctx: CallContext) -> ViabilityOut:
            """The cluster's viability metrics and active adaptations, from this agent's
            replica of the shared counters."""
            return ViabilityOut(agent=role.agent.id, **role.report())

        return [viability, *self.role_tools()]

    async def start(self, agent: AgentHandle) -> None:
        self._agent = agent
        store = agent.store
        assert store is not None
        store.watch(PREFIX, self._changed)
        for key, value in (await store.dump()).items():
            if key.startswith(PREFIX):
                self.values[key] = value
        await self.on_start()

    def _changed(self, key: str, value: Any) -> None:
        if value is None:
            self.values.pop(key, None)
        else:
            self.values[key] = value

    def report(self) -> dict[str, Any]:
        return {
            "metrics": measure(self.values).to_wire(),
            "adaptations": [a.to_wire() for _, a in sorted(self.adaptations().items())],
        }

    def sections(self) -> dict[str, Any]:
        return {"viability": self.report() if self._agent is not None else None}
