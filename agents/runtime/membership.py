"""Membership: who belongs to the cluster, kept in a replicated LWW map.

Every agent hosts a replica of the context store, so every agent reads the same member
list. Joining is an explicit write on start and leaving an explicit delete on a graceful
stop; an agent that crashes writes nothing, so it stays a member (marked dead by the
liveness detector) until someone removes it. Quorums count majorities over this list.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

from agents.runtime.errors import MembershipError

__all__ = ["MEMBERS_KEY", "MemberRecord", "Membership", "Store"]

log = logging.getLogger("agents.runtime.membership")
MEMBERS_KEY = "agents.members"


class Store(Protocol):
    """What membership needs of crdt's ContextStore."""

    async def map_set(
        self, key: str, field: str, value: Any, *, write: str = ..., timeout: float = ...
    ) -> Any: ...

    async def map_delete(
        self, key: str, field: str, *, write: str = ..., timeout: float = ...
    ) -> Any: ...

    def local(self, key: str) -> Any: ...

    def members(self) -> list[str]: ...

    async def forget(self, replica_id: str, *, write: str = ..., timeout: float = ...) -> Any: ...

    def watch(self, prefix: str, cb: Callable[..., Any]) -> Any: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class MemberRecord:
    """What an agent announces about itself when it joins."""

    id: str
    role: str
    version: str
    state: str
    capabilities: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()
    voter: bool = False
    host: str = ""
    pid: int = 0
    joined_ms: int = 0
    heartbeat: float = 1.0  # the agent's heartbeat interval, seconds
    metrics_port: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["capabilities"] = list(self.capabilities)
        doc["tools"] = list(self.tools)
        return doc

    @classmethod
    def from_wire(cls, doc: Any) -> MemberRecord | None:
        """The record, or None if the value is not one (a foreign write is ignored)."""
        if not isinstance(doc, dict):
            return None
        try:
            return cls(
                id=str(doc["id"]),
                role=str(doc["role"]),
                version=str(doc.get("version", "")),
                state=str(doc.get("state", "")),
                capabilities=tuple(str(c) for c in doc.get("capabilities", ())),
                tools=tuple(str(t) for t in doc.get("tools", ())),
                voter=bool(doc.get("voter", False)),
                host=str(doc.get("host", "")),
                pid=int(doc.get("pid", 0)),
                joined_ms=int(doc.get("joined_ms", 0)),
                heartbeat=float(doc.get("heartbeat", 1.0)),
                metrics_port=doc.get("metrics_port"),
                extra=dict(doc.get("extra") or {}),
            )
        except (KeyError, TypeError, ValueError):
            return None

    def with_state(self, state: str) -> MemberRecord:
        return replace(self, state=state)


class Membership:
    """Join, leave, remove and read the member list of one replica."""

    def __init__(self, store: Store, *, timeout: float = 2.0) -> None:
        self.store = store
        self.timeout = timeout

    def records(self) -> dict[str, MemberRecord]:
        """The members this replica knows, by id."""
        value = self.store.local(MEMBERS_KEY) or {}
        records = {}
        for agent_id, doc in value.items():
            record = MemberRecord.from_wire(doc)
            if record is not None and record.id == agent_id:
                records[agent_id] = record
        return records

    def voters(self) -> dict[str, MemberRecord]:
        """The members that vote (what a majority is counted over)."""
        return {k: r for k, r in self.records().items() if r.voter}

    def watch(self, callback: Callable[[], None]) -> None:
        """Call `callback()` whenever the member list changes on this replica."""
        self.store.watch(MEMBERS_KEY, lambda *_: callback())

    async def join(self, record: MemberRecord, *, write: str = "local") -> None:
        """Announce this agent (again, after a restart: the record is replaced)."""
        await self.store.map_set(
            MEMBERS_KEY, record.id, record.to_wire(), write=write, timeout=self.timeout
        )

    async def update(self, record: MemberRecord) -> None:
        """Publish a changed record (a new lifecycle state)."""
        await self.join(record)

    async def leave(self, agent_id: str) -> None:
        """Remove this agent on a graceful stop, and its durable replica from the store's
        members, so neither counts toward majorities any more (both rejoin on restart)."""
        await self._drop(agent_id)

    async def remove(self, agent_id: str) -> MemberRecord:
        """Remove another member (a crashed one); MembershipError if it is not a member."""
        record = self.records().get(agent_id)
        if record is None:
            raise MembershipError(f"{agent_id} is not a member")
        await self._drop(agent_id)
        return record

    async def _drop(self, agent_id: str) -> None:
        # Local writes: the replicator sends the delta to every live replica at once, and
        # anti-entropy repairs a lost one. A stronger concern would count crashed durable
        # replicas, which is exactly what a removal is about, and could never be met.
        await self.store.map_delete(MEMBERS_KEY, agent_id, write="local", timeout=self.timeout)
        if agent_id in self.store.members():
            await self.store.forget(agent_id, write="local", timeout=self.timeout)
