"""Who the replicator counts: the peers heard announcing lately and the members registered
in the replicated state, and how many acknowledgements a concern needs among them.

Pure bookkeeping (no bus, no clock of its own: callers pass the time), kept apart so the
counting rules read in one place and the I/O parts only ask.
"""

from __future__ import annotations

from crdt.concern import Level, needed
from crdt.messages import Hello
from crdt.state import ReplicaState

__all__ = ["MEMBERS_KEY", "RESERVED_PREFIX", "Peer", "PeerTable"]

RESERVED_PREFIX = "_ctx."
MEMBERS_KEY = "_ctx.replicas"  # LWW map: durable replica id -> {"joined_ms": ...}


class Peer:
    """What one other replica last announced, and when (loop time) it was heard."""

    __slots__ = ("durable", "instance", "seen", "top")

    def __init__(self, durable: bool, instance: int, seen: float, top: bytes) -> None:
        self.durable, self.instance, self.seen, self.top = durable, instance, seen, top


class PeerTable:
    """The other replicas heard lately, and the members registered in `state`."""

    def __init__(self, state: ReplicaState, replica_id: str, durable: bool) -> None:
        self.state = state
        self.replica_id = replica_id
        self.durable = durable
        self.heard: dict[str, Peer] = {}
        self._members: frozenset[str] | None = None

    def registered(self) -> frozenset[str]:
        """The members registered in the replicated state (empty until this replica has
        synced with a member, or registered itself)."""
        if self._members is None:
            registered = self.state.get(MEMBERS_KEY)
            self._members = frozenset(registered) if isinstance(registered, dict) else frozenset()
        return self._members

    def forget_registered(self) -> None:
        """The member map changed: read it again when next asked."""
        self._members = None

    def members(self) -> frozenset[str]:
        """Durable replicas counted by concerns: those registered in the state (a crashed
        one stays until forgotten) and any live durable replica announcing itself."""
        registered = self.registered()
        live = {r for r, peer in self.heard.items() if peer.durable}
        if self.durable and self.replica_id in registered:
            live.add(self.replica_id)
        return registered | live

    def needed(self, level: Level, members: frozenset[str]) -> int:
        """Acknowledgements `level` needs. While the registered member set is unknown (a
        fresh replica that has reached no member yet), the live replicas it hears may be a
        minority of the real members, so majority and all cannot be met: one more than
        every replica heard. Anti-entropy with any member brings the set and lifts this."""
        need = needed(level, len(members))
        if level in ("majority", "all") and not self.registered():
            need = len(members) + 1
        return need

    def replicas(self) -> list[str]:
        """Every replica known: members, live announcers and this one."""
        return sorted(self.members() | self.heard.keys() | {self.replica_id})

    def announcing(self) -> list[str]:
        """The other replicas heard announcing lately (a goodbye or silence drops one)."""
        return sorted(self.heard)

    def hello(self, m: Hello, now: float) -> None:
        """Note another replica's announcement (a goodbye drops it)."""
        if m.bye:
            self.heard.pop(m.sender, None)
            return
        self.heard[m.sender] = Peer(m.durable, m.instance, now, m.top)

    def drop_silent(self, horizon: float) -> None:
        """Forget the peers not heard since `horizon`."""
        for replica in [r for r, p in self.heard.items() if p.seen < horizon]:
            del self.heard[replica]

    def differing(self, top: bytes, skip: set[str]) -> list[str]:
        """Peers whose last announced top hash is not `top`, except those in `skip`."""
        return [r for r, p in self.heard.items() if p.top != top and r not in skip]
