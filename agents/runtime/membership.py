"""Membership: who belongs to the cluster, kept in a replicated LWW map.

Every agent hosts a replica of the context store, so every agent reads the same member
list. Joining is an explicit write on start and leaving an explicit delete on a graceful
stop; an agent that crashes writes nothing, so it stays a member (marked dead by the
liveness detector) until someone removes it. Quorums count majorities over this list.

Any holder of the cluster key can write the map, so with a roster (`bus.verifier`) a
record counts only if its own agent signed it (identity record type "member") and the
roster grants the role it claims; it votes only if the roster also grants VOTER_ROLE.
Refused records are left out and counted by reason (`Membership.refused`).
"""

from __future__ import annotations

import copy
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

from agents.runtime.errors import MembershipError
from amcp.attest import IdentityVerifier, sign_record
from amcp.identity import Identity
from amcp.roster import RosterEntry
from consensus.signatures import VOTER_NOT_GRANTED, check_member  # the roll's rule too

__all__ = ["MEMBERS_KEY", "MemberCheck", "MemberRecord", "Membership", "Store"]

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


class MemberCheck:
    """Which member records count (pure): with no verifier, every well-formed record
    whose id is its field; with one, only those its agent signed for a role the roster
    grants, voting only with VOTER_ROLE. A verdict is kept until the record or its
    roster entry changes, so a read of the list costs a comparison per member, and
    `refused` counts each refused record once (again after a roster change), by reason:
    `identity_<verdict>`, or `identity_voter_not_granted` for a voter claim dropped."""

    def __init__(self, verifier: IdentityVerifier | None) -> None:
        self.verifier = verifier
        self.refused: Counter[str] = Counter()
        self._seen: dict[str, tuple[Any, RosterEntry | None, MemberRecord | None]] = {}

    def records(self, value: Mapping[str, Any]) -> dict[str, MemberRecord]:
        """The records that count in a member map, by id."""
        for gone in self._seen.keys() - value.keys():
            del self._seen[gone]
        records = {}
        for agent_id, doc in value.items():
            record = self.check(agent_id, doc)
            if record is not None:
                records[agent_id] = record
        return records

    def check(self, agent_id: str, doc: Any) -> MemberRecord | None:
        """The record of field `agent_id`, or None if it does not count."""
        record = MemberRecord.from_wire(doc)
        if record is None or record.id != agent_id:
            return None
        if self.verifier is None:
            return record
        entry = self.verifier.roster.get(agent_id)
        seen = self._seen.get(agent_id)
        if seen is not None and seen[1] is entry and seen[0] == doc:
            return seen[2]
        reason = check_member(self.verifier, agent_id, doc)
        if reason is not None:
            self.refused[reason] += 1
        if reason == VOTER_NOT_GRANTED:
            counted: MemberRecord | None = replace(record, voter=False)
        else:
            counted = None if reason is not None else record
        self._seen[agent_id] = (copy.deepcopy(doc), entry, counted)
        return counted


class Membership:
    """Join, leave, remove and read the member list of one replica. With `identity`,
    the records it writes are signed; with `verifier`, the ones it reads are checked
    (MemberCheck)."""

    def __init__(
        self,
        store: Store,
        *,
        timeout: float = 2.0,
        identity: Identity | None = None,
        verifier: IdentityVerifier | None = None,
    ) -> None:
        self.store = store
        self.timeout = timeout
        self.identity = identity
        self.checker = MemberCheck(verifier)
        self._written: dict[str, Any] = {}  # agent id -> the doc this process last wrote

    @property
    def refused(self) -> Counter[str]:
        """Member records left out, by reason (see MemberCheck)."""
        return self.checker.refused

    def records(self) -> dict[str, MemberRecord]:
        """The members this replica knows and that count, by id."""
        value = self.store.local(MEMBERS_KEY)
        return self.checker.records(value if isinstance(value, Mapping) else {})

    def displaced(self, agent_id: str) -> bool:
        """Whether the record this process wrote for `agent_id` is no longer the one in
        the map (deleted, or replaced by a write it did not make)."""
        if agent_id not in self._written:
            return False
        value = self.store.local(MEMBERS_KEY)
        current = value.get(agent_id) if isinstance(value, Mapping) else None
        return current != self._written[agent_id]

    def voters(self) -> dict[str, MemberRecord]:
        """The members that vote (what a majority is counted over)."""
        return {k: r for k, r in self.records().items() if r.voter}

    def watch(self, callback: Callable[[], None]) -> None:
        """Call `callback()` whenever the member list changes on this replica."""
        self.store.watch(MEMBERS_KEY, lambda *_: callback())

    async def join(self, record: MemberRecord, *, write: str = "local") -> None:
        """Announce this agent (again, after a restart: the record is replaced), signed
        when this process has an identity (its own record only: it cannot sign another's)."""
        doc = record.to_wire()
        if self.identity is not None and self.identity.agent_id == record.id:
            try:
                doc = sign_record(self.identity, "member", doc)
            except ValueError as exc:  # e.g. an `extra` value with no canonical form
                raise MembershipError(
                    f"cannot sign the member record of {record.id}: {exc}"
                ) from None
        self._written[record.id] = doc
        await self.store.map_set(MEMBERS_KEY, record.id, doc, write=write, timeout=self.timeout)

    async def update(self, record: MemberRecord) -> None:
        """Publish a changed record (a new lifecycle state)."""
        await self.join(record)

    async def leave(self, agent_id: str) -> None:
        """Remove this agent on a graceful stop, and its durable replica from the store's
        members, so neither counts toward majorities any more (both rejoin on restart)."""
        self._written.pop(agent_id, None)
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
