"""Replication of one ReplicaState over a Bus: deltas out and in, acknowledgements for
write concerns, reads from other replicas, announcements and anti-entropy.

Subjects (all `amcp.<cluster>.ctx.*`):

- `ctx.delta`: batches of delta records from every replica (each local mutation's delta,
  coalesced per key while a batch is being sent).
- `ctx.hello`: periodic announcements (id, durable or not, top hash of the state).
- `ctx.rep.<id>`: one replica's own subject: acks, retries, anti-entropy pushes, and the
  requests `sum` (bucket hashes) and `pull` (states of differing keys).
- `ctx.boot.durable`, `ctx.boot.any`: queue groups a new replica asks for a peer.

A durable replica puts every record on disk before it acknowledges it, and sends its own
mutations (in deltas or in any state it hands out) only after they are on disk, so a
replica killed and restarted never reuses a counter entry or OR-set dot a peer has seen.

The work is split by concern, each part holding the shared `Link` (`crdt.link`): delta
gossip (`crdt.deltas`), write-concern acknowledgements (`crdt.acks`), announcements and
anti-entropy (`crdt.antientropy`), bootstrap (`crdt.bootstrap`), reads with a concern
(`crdt.reads`), and who counts as a member (`crdt.peers`, pure). This module wires them to
the bus and is the one face ContextStore sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from amcp import Bus, Message, Subscription
from amcp.errors import AmcpError
from crdt.acks import LOCAL, Acks, WriteBatch
from crdt.antientropy import AntiEntropy
from crdt.bootstrap import Bootstrap
from crdt.concern import Level, WriteResult
from crdt.deltas import DeltaGossip
from crdt.errors import CrdtDecodeError
from crdt.journal import Journal
from crdt.link import KIND, Link
from crdt.messages import Ack, Deltas, Hello, Pull, SumRequest
from crdt.reads import Reads
from crdt.state import Delta, ReplicaState

__all__ = ["Replicator"]


class Replicator:
    """Moves one replica's deltas over a Bus. ContextStore is its user-facing wrapper."""

    def __init__(
        self,
        bus: Bus,
        state: ReplicaState,
        journal: Journal | None = None,
        *,
        gossip_interval: float = 1.0,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self._link = link = Link(bus, state, journal, on_change)
        self.bus, self.state, self.journal = bus, state, journal
        self.replica_id, self.instance = link.replica_id, link.instance
        self.index, self.stats = link.index, link.stats
        self._acks = Acks(link)
        self._deltas = DeltaGossip(link, self._acks)
        self._antientropy = AntiEntropy(link, self._deltas, gossip_interval)
        self._bootstrap = Bootstrap(link, self._antientropy)
        self._reads = Reads(link, self._antientropy, self._bootstrap)
        self._subs: list[Subscription] = []
        self._gossip: asyncio.Task[None] | None = None
        self.on_lag: Callable[[float], None] | None = None
        """Called with each peer's delta frame's age on arrival, in seconds (metrics)."""

    # -- what ContextStore reads ------------------------------------------------------

    @property
    def gossip_interval(self) -> float:
        return self._antientropy.interval

    @property
    def closed(self) -> bool:
        return self._link.closed

    @property
    def durable(self) -> bool:
        return self._link.durable

    @property
    def on_change(self) -> Callable[[str], None] | None:
        return self._link.on_change

    @on_change.setter
    def on_change(self, hook: Callable[[str], None] | None) -> None:
        self._link.on_change = hook

    @property
    def on_sync(self) -> Callable[[str, dict[str, Any]], None] | None:
        return self._link.on_sync

    @on_sync.setter
    def on_sync(self, observer: Callable[[str, dict[str, Any]], None] | None) -> None:
        self._link.on_sync = observer

    # -- lifecycle --------------------------------------------------------------------

    async def start(self, bootstrap_timeout: float = 2.0) -> bool:
        """Subscribe, catch up from one peer (a durable one if any answers), then join the
        boot groups and start announcing. Returns whether a peer was found."""
        link = self._link
        subscribe = link.bus.subscribe
        self._subs.append(await subscribe(link.area("ctx", "delta"), self._on_shared))
        self._subs.append(await subscribe(link.direct(link.replica_id), self._on_direct))
        found = await self._bootstrap.catch_up(bootstrap_timeout)
        self._subs.append(await subscribe(link.area("ctx", "hello"), self._on_shared))
        for group in self._bootstrap.groups():
            subject = self._bootstrap.subject(group)
            self._subs.append(await subscribe(subject, self._on_direct, queue=f"ctx-boot-{group}"))
        await link.bus.flush()
        self._gossip = link.loop.create_task(self._antientropy.run())
        return found

    async def flush(self) -> None:
        """Return once every delta submitted so far is sent (or failed)."""
        await self._deltas.drain()

    async def close(self) -> None:
        """Send what is pending, say goodbye, stop. The bus stays open (the caller owns it)."""
        link = self._link
        if link.closed:
            return
        if self._gossip is not None:
            self._gossip.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._gossip
        await self._deltas.drain()
        link.closed = True
        with contextlib.suppress(AmcpError):
            await link.publish(link.area("ctx", "hello"), self._antientropy.hello(bye=True))
        for sub in self._subs:
            await sub.unsubscribe()
        await link.cancel_tasks()
        self._acks.wake_all()  # waiters see `closed` and give up
        with contextlib.suppress(Exception):
            await link.bus.flush(timeout=1.0)

    # -- membership -------------------------------------------------------------------

    def members(self) -> frozenset[str]:
        """Durable replicas counted by concerns (see `PeerTable.members`)."""
        return self._link.peers.members()

    def replicas(self) -> list[str]:
        """Every replica known: members, live announcers and this one."""
        return self._link.peers.replicas()

    def announcing(self) -> list[str]:
        """The other replicas heard announcing lately (a goodbye or silence drops one)."""
        return self._link.peers.announcing()

    def forget_dropped(self) -> None:
        """Take the keys retention dropped out of the anti-entropy index."""
        self._link.forget_dropped()

    # -- writes and reads -------------------------------------------------------------

    def submit(self, delta: Delta, wants_ack: bool = False) -> WriteBatch:
        """Queue a local mutation's delta for the next batch (coalesced with any pending
        delta of the same key) and return that batch."""
        return self._deltas.submit(delta, wants_ack)

    async def replicate(
        self, delta: Delta, level: Level, timeout: float, linger: float = 0.0
    ) -> WriteResult:
        """Send a local mutation's delta and wait for `level` acknowledgements. `linger`:
        see DeltaGossip.submit (taken only when nobody waits on the write)."""
        batch = self._deltas.submit(delta, wants_ack=level != "local", linger=linger)
        if level == "local" and self._link.journal is None:
            return LOCAL
        return await self._acks.wait(batch, delta.key, level, timeout)

    async def read(self, level: Level, timeout: float, keys: list[str] | None = None) -> int:
        """Merge the states of `level` replicas into this one (all keys, or `keys`) and
        return how many answered; ReadConcernError if too few answer in time."""
        return await self._reads.read(level, timeout, keys)

    async def fetch(
        self, key: str, level: Level, timeout: float, found: Callable[[], bool]
    ) -> tuple[frozenset[str], frozenset[str]]:
        """Merge the members' states of `key` until `found()` holds with `level` answers in,
        or every member has answered, or `timeout` (see `Reads.fetch`)."""
        return await self._reads.fetch(key, level, timeout, found)

    # -- inbound ----------------------------------------------------------------------

    def _on_shared(self, msg: Message) -> None:
        m = self._link.parse(msg)
        if isinstance(m, Deltas):
            self._lag(msg)
            self._deltas.on_deltas(m, msg.sender)
        elif isinstance(m, Hello):
            self._antientropy.on_hello(m)
        elif m is not None:
            self._unexpected(msg, m)

    def _on_direct(self, msg: Message) -> None:
        link = self._link
        m = link.parse(msg)
        if isinstance(m, Deltas):
            self._lag(msg)
            self._deltas.on_deltas(m, msg.sender)
        elif isinstance(m, Ack):
            self._acks.on_ack(m)
        elif isinstance(m, SumRequest) and msg.reply_to is not None:
            link.spawn(msg.respond(self._antientropy.summary().to_wire(), kind=KIND))
        elif isinstance(m, Pull) and msg.reply_to is not None:
            link.spawn(self._antientropy.answer_pull(msg, m))
        elif m is not None:
            self._unexpected(msg, m)

    def _lag(self, msg: Message) -> None:
        """Replication lag: a peer's deltas are sealed as they leave it, so a frame's age
        on arrival is how far this replica trails that write (clocks within the skew)."""
        if self.on_lag is not None and msg.sender != self.bus.sender:
            self.on_lag(max(0.0, time.time() - msg.ts_ms / 1000))

    def _unexpected(self, msg: Message, m: object) -> None:
        self._link.reject(
            "malformed", msg.sender, CrdtDecodeError(f"unexpected {type(m).__name__}")
        )
