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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from amcp.bus import Bus, Message, Subscription
from amcp.errors import AmcpError, EncodeError, NoResponders, RequestTimeout
from amcp.ratelog import RateLimitedLog
from crdt.concern import Level, WriteResult, needed
from crdt.errors import (
    ClockDriftError,
    CrdtDecodeError,
    CrdtError,
    CrdtTypeMismatch,
    PersistenceError,
    ReadConcernError,
    WriteConcernError,
)
from crdt.journal import Journal
from crdt.messages import (
    Ack,
    Deltas,
    Hello,
    Pull,
    PullReply,
    Summary,
    SumRequest,
    check_replica_id,
    parse,
)
from crdt.state import TYPES, Delta, ReplicaState
from crdt.sync import DigestIndex, answer_pull, differing, group_buckets
from crdt.wire import pack

__all__ = ["MEMBERS_KEY", "RESERVED_PREFIX", "Replicator"]

log = logging.getLogger("amcp.crdt")
RESERVED_PREFIX = "_ctx."
MEMBERS_KEY = "_ctx.replicas"  # LWW map: durable replica id -> {"joined_ms": ...}
MAX_PULL_KEYS = 2048  # digests per pull request
MAX_PULL_ROUNDS = 256  # pages of one pull before giving up until the next round
RETRY_FIRST = 0.1  # seconds before a write is re-sent to members that have not acked
RETRY_MAX = 1.0
REQUEST_TIMEOUT = 2.0  # anti-entropy requests
KIND = "ctx"
_LOCAL = WriteResult(1, 1)


class _Batch:
    """The local mutations sent together: who acked each of its frames, and whether they
    are on the local disk yet (`done`: always resolves, `failed` tells)."""

    __slots__ = ("acks", "chunks", "done", "event", "failed", "waiters", "wants_ack", "wids")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.done: asyncio.Future[None] = loop.create_future()
        self.failed = False
        self.event = asyncio.Event()
        self.wants_ack = False
        self.waiters = 0
        self.wids: list[int] = []
        self.chunks: list[list[Any]] = []
        self.acks: dict[int, dict[str, frozenset[str]]] = {}

    def acked(self, key: str) -> set[str]:
        """Replicas that acknowledged every frame of this batch and did not refuse `key`."""
        result: set[str] | None = None
        for wid in self.wids:
            ok = {r for r, bad in self.acks.get(wid, {}).items() if key not in bad}
            result = ok if result is None else result & ok
        return result or set()


class _Peer:
    __slots__ = ("durable", "instance", "seen", "top")

    def __init__(self, durable: bool, instance: int, seen: float, top: bytes) -> None:
        self.durable, self.instance, self.seen, self.top = durable, instance, seen, top


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
        self.bus = bus
        self.state = state
        self.journal = journal
        self.replica_id = check_replica_id(state.replica_id)
        self.instance = secrets.randbits(62) | 1  # never 0
        self.gossip_interval = gossip_interval
        self.on_change = on_change
        self.index = DigestIndex(state)
        self.stats: Counter[str] = Counter()
        self._area = bus.subjects.area
        self._budget = bus.limits.max_frame_bytes // 2
        self._loop = asyncio.get_running_loop()
        self._outbox: dict[str, list[Any]] = {}  # key -> [tag, wire or None, Crdt or None]
        self._open: _Batch | None = None
        self._last: _Batch | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._wids: dict[int, _Batch] = {}
        self._next_wid = 1
        self._peers: dict[str, _Peer] = {}
        self._syncing: set[str] = set()
        self._subs: list[Subscription] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._gossip: asyncio.Task[None] | None = None
        self._members: frozenset[str] | None = None
        self._ratelog = RateLimitedLog(log)
        self.closed = False

    @property
    def durable(self) -> bool:
        return self.journal is not None

    # -- lifecycle --------------------------------------------------------------------

    async def start(self, bootstrap_timeout: float = 2.0) -> bool:
        """Subscribe, catch up from one peer (a durable one if any answers), then join the
        boot groups and start announcing. Returns whether a peer was found."""
        subscribe = self.bus.subscribe
        self._subs.append(await subscribe(self._area("ctx", "delta"), self._on_shared))
        self._subs.append(await subscribe(self._direct(self.replica_id), self._on_direct))
        found = await self._bootstrap(bootstrap_timeout)
        self._subs.append(await subscribe(self._area("ctx", "hello"), self._on_shared))
        boot = ["any", "durable"] if self.durable else ["any"]
        for group in boot:
            subject = self._area("ctx", "boot", group)
            self._subs.append(await subscribe(subject, self._on_direct, queue=f"ctx-boot-{group}"))
        await self.bus.flush()
        self._gossip = self._loop.create_task(self._gossip_loop())
        return found

    async def _bootstrap(self, timeout: float) -> bool:
        for group in ("durable", "any"):
            try:
                reply = await self.bus.request(
                    self._area("ctx", "boot", group),
                    SumRequest(self.replica_id).to_wire(),
                    timeout=timeout,
                    kind=KIND,
                )
                summary = parse(reply.body)
            except NoResponders:
                continue
            except (RequestTimeout, CrdtDecodeError) as exc:
                log.warning(
                    "replica %s: bootstrap from %s peers failed: %s", self.replica_id, group, exc
                )
                continue
            if isinstance(summary, Summary) and summary.sender != self.replica_id:
                try:
                    await self._sync(summary.sender, summary)
                except (AmcpError, CrdtError) as exc:
                    log.warning(
                        "replica %s: bootstrap from %s failed: %s",
                        self.replica_id,
                        summary.sender,
                        exc,
                    )
                    continue
                self.stats["bootstraps"] += 1
                return True
        return False

    async def close(self) -> None:
        """Send what is pending, say goodbye, stop. The bus stays open (the caller owns it)."""
        if self.closed:
            return
        if self._gossip is not None:
            self._gossip.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._gossip
        while self._flusher is not None:
            await asyncio.shield(self._flusher)
        self.closed = True
        with contextlib.suppress(AmcpError):
            await self._publish(self._area("ctx", "hello"), self._hello(bye=True))
        for sub in self._subs:
            await sub.unsubscribe()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for batch in self._wids.values():
            batch.event.set()  # waiters see `closed` and give up
        with contextlib.suppress(Exception):
            await self.bus.flush(timeout=1.0)

    # -- membership -------------------------------------------------------------------

    def _registered(self) -> frozenset[str]:
        """The members registered in the replicated state (empty until this replica has
        synced with a member, or registered itself)."""
        if self._members is None:
            registered = self.state.get(MEMBERS_KEY)
            self._members = frozenset(registered) if isinstance(registered, dict) else frozenset()
        return self._members

    def members(self) -> frozenset[str]:
        """Durable replicas counted by concerns: those registered in the state (a crashed
        one stays until forgotten) and any live durable replica announcing itself."""
        registered = self._registered()
        live = {r for r, peer in self._peers.items() if peer.durable}
        if self.durable and self.replica_id in registered:
            live.add(self.replica_id)
        return registered | live

    def _needed(self, level: Level, members: frozenset[str]) -> int:
        """Acknowledgements `level` needs. While the registered member set is unknown (a
        fresh replica that has reached no member yet), the live replicas it hears may be a
        minority of the real members, so majority and all cannot be met: one more than
        every replica heard. Anti-entropy with any member brings the set and lifts this."""
        need = needed(level, len(members))
        if level in ("majority", "all") and not self._registered():
            need = len(members) + 1
        return need

    def replicas(self) -> list[str]:
        """Every replica known: members, live announcers and this one."""
        return sorted(self.members() | self._peers.keys() | {self.replica_id})

    def announcing(self) -> list[str]:
        """The other replicas heard announcing lately (a goodbye or silence drops one)."""
        return sorted(self._peers)

    def _touched(self, key: str, changed: bool) -> None:
        self.forget_dropped()
        if key not in self.state:  # an expired register: refused, or dropped at once
            self.stats["expired"] += 1
            return
        self.index.touch(key)
        if key == MEMBERS_KEY:
            self._members = None
        if changed and self.on_change is not None:
            self.on_change(key)

    def forget_dropped(self) -> None:
        """Take the keys retention dropped out of the anti-entropy index."""
        for key in self.state.drain_dropped():
            self.index.discard(key)
            self.stats["dropped"] += 1

    # -- local writes -----------------------------------------------------------------

    def submit(self, delta: Delta, wants_ack: bool = False) -> _Batch:
        """Queue a local mutation's delta for the next batch (coalesced with any pending
        delta of the same key) and return that batch."""
        if self.closed:
            raise CrdtError("the context store is closed")
        key = delta.key
        pending = self._outbox.get(key)
        if pending is None:
            self._outbox[key] = [delta.type_tag, delta.wire, None]
        else:
            cls = TYPES[delta.type_tag]
            crdt = pending[2] if pending[2] is not None else cls.from_wire(pending[1])
            crdt.merge(cls.from_wire(delta.wire))
            pending[1], pending[2] = None, crdt
        self._touched(key, delta.changed)
        batch = self._open
        if batch is None:
            batch = self._open = self._last = _Batch(self._loop)
        batch.wants_ack = batch.wants_ack or wants_ack
        if self._flusher is None:
            self._flusher = self._loop.create_task(self._flush())
        return batch

    async def _flush(self) -> None:
        try:
            while self._outbox:
                batch, self._open = self._open, None
                outbox, self._outbox = self._outbox, {}
                assert batch is not None
                records = [
                    [key, tag, wire if wire is not None else crdt.to_wire()]
                    for key, (tag, wire, crdt) in outbox.items()
                ]
                if self.journal is not None and not await self.journal.append(records):
                    batch.failed = True
                batch.done.set_result(None)
                batch.event.set()
                if batch.failed:
                    continue  # never send what is not on disk; the writer gets an error
                try:
                    await self._send_records(self._area("ctx", "delta"), records, batch)
                except Exception as exc:  # nats-py raises its own types when disconnected
                    self.stats["send_failed"] += 1
                    self._ratelog.log(
                        logging.WARNING,
                        "send",
                        "replica %s could not send deltas (anti-entropy will): %s",
                        self.replica_id,
                        exc,
                    )
        finally:
            self._flusher = None

    async def replicate(self, delta: Delta, level: Level, timeout: float) -> WriteResult:
        """Send a local mutation's delta and wait for `level` acknowledgements."""
        batch = self.submit(delta, wants_ack=level != "local")
        if level == "local" and self.journal is None:
            return _LOCAL
        deadline = self._loop.time() + timeout
        retry = RETRY_FIRST
        next_retry = self._loop.time() + retry
        batch.waiters += 1
        try:
            while True:
                acks, need = self._count(batch, delta.key, level)
                if acks >= need:
                    return _LOCAL if level == "local" else WriteResult(acks, need)
                if batch.failed:
                    assert self.journal is not None and self.journal.failure is not None
                    raise self.journal.failure
                now = self._loop.time()
                if now >= deadline or self.closed:
                    raise WriteConcernError(acks, need, level, timeout, members=len(self.members()))
                if now >= next_retry and batch.wids:
                    await self._resend(batch, delta.key)
                    retry = min(retry * 2, RETRY_MAX)
                    next_retry = now + retry
                batch.event.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(batch.event.wait(), min(deadline, next_retry) - now)
        finally:
            batch.waiters -= 1
            if batch.waiters == 0:
                for wid in batch.wids:
                    self._wids.pop(wid, None)

    def _count(self, batch: _Batch, key: str, level: Level) -> tuple[int, int]:
        on_disk = self.journal is not None and batch.done.done() and not batch.failed
        if level == "local":
            return int(on_disk or self.journal is None), 1
        members = self.members()
        acks = batch.acked(key)
        if on_disk:
            acks.add(self.replica_id)
        return len(acks & members), self._needed(level, members)

    async def _resend(self, batch: _Batch, key: str) -> None:
        """Re-send the batch to members that have not acknowledged it yet (a lost frame, a
        member restarting)."""
        missing = self.members() - batch.acked(key) - {self.replica_id}
        for member in sorted(missing):
            for wid, chunk in zip(batch.wids, batch.chunks, strict=True):
                if member not in batch.acks.get(wid, {}):
                    msg = Deltas(self.replica_id, self.instance, chunk, wid)
                    await self._publish(self._direct(member), msg)
        self.stats["resends"] += 1

    async def _send_records(self, subject: str, records: list[Any], batch: _Batch | None) -> None:
        """Publish records in frames of at most the byte budget; numbered for acks when a
        writer waits for them."""
        for chunk in self._chunks(records):
            wid = 0
            if batch is not None and batch.wants_ack:
                wid = self._next_wid
                self._next_wid += 1
                self._wids[wid] = batch
                batch.wids.append(wid)
                batch.chunks.append(chunk)
            await self._publish(subject, Deltas(self.replica_id, self.instance, chunk, wid))
            self.stats["deltas_out"] += len(chunk)

    def _chunks(self, records: list[Any]) -> Iterable[list[Any]]:
        if len(records) == 1:
            yield records
            return
        chunk: list[Any] = []
        size = 0
        for record in records:
            cost = len(pack(record))
            if chunk and size + cost > self._budget:
                yield chunk
                chunk, size = [], 0
            chunk.append(record)
            size += cost
        if chunk:
            yield chunk

    async def _barrier(self) -> None:
        """Wait until every local mutation made so far is on disk (durable replicas only),
        before any state leaves this replica."""
        if self.journal is not None:
            if self._last is not None:
                await asyncio.shield(self._last.done)
            if self.journal.failure is not None:
                raise self.journal.failure  # what is not on disk must not leave

    async def _publish(self, subject: str, msg: Any) -> None:
        try:
            await self.bus.publish(subject, msg.to_wire(), kind=KIND)
        except EncodeError as exc:
            self.stats["oversize"] += 1
            self._ratelog.log(logging.ERROR, "oversize", "cannot send on %s: %s", subject, exc)

    # -- inbound ----------------------------------------------------------------------

    def _direct(self, replica: str) -> str:
        return self._area("ctx", "rep", replica)

    def _parse(self, msg: Message) -> Any:
        try:
            return parse(msg.body)
        except CrdtDecodeError as exc:
            self._reject("malformed", msg.sender, exc)
            return None

    def _reject(self, reason: str, sender: str, exc: Exception) -> None:
        self.stats[f"rejected_{reason}"] += 1
        self._ratelog.log(
            logging.WARNING,
            reason,
            "replica %s refused input from %s: %s",
            self.replica_id,
            sender,
            exc,
        )

    def _is_self(self, sender: str, instance: int) -> bool:
        if sender != self.replica_id:
            return False
        if instance and instance != self.instance:  # 0: not on the wire
            self.stats["duplicate_id"] += 1
            self._ratelog.log(
                logging.ERROR, "duplicate", "another live replica uses the id %s", sender
            )
        return True

    def _on_shared(self, msg: Message) -> None:
        m = self._parse(msg)
        if isinstance(m, Deltas):
            self._on_deltas(m, msg.sender)
        elif isinstance(m, Hello):
            self._on_hello(m)
        elif m is not None:
            self._reject("malformed", msg.sender, CrdtDecodeError(f"unexpected {type(m).__name__}"))

    def _on_direct(self, msg: Message) -> None:
        m = self._parse(msg)
        if isinstance(m, Deltas):
            self._on_deltas(m, msg.sender)
        elif isinstance(m, Ack):
            self._on_ack(m)
        elif isinstance(m, SumRequest) and msg.reply_to is not None:
            self._spawn(msg.respond(self._summary().to_wire(), kind=KIND))
        elif isinstance(m, Pull) and msg.reply_to is not None:
            self._spawn(self._answer_pull(msg, m))
        elif m is not None:
            self._reject("malformed", msg.sender, CrdtDecodeError(f"unexpected {type(m).__name__}"))

    def _apply(self, records: list[Any], sender: str) -> tuple[list[Any], list[str]]:
        """Check and merge records one by one; returns (applied, refused keys)."""
        good: list[Any] = []
        bad: list[str] = []
        for record in records:
            key = None
            try:
                delta = Delta.from_wire(record)
                key = delta.key
                changed = self.state.apply(delta)
            except CrdtTypeMismatch as exc:
                self._reject("type", sender, exc)
            except ClockDriftError as exc:
                self._reject("clock", sender, exc)
            except CrdtDecodeError as exc:
                self._reject("malformed", sender, exc)
            else:
                self._touched(delta.key, changed)
                if delta.key in self.state:  # else expired: nothing to keep, nothing wrong
                    good.append(record)
                    self.stats["applied"] += 1
                continue
            if key is not None:
                bad.append(key)
        return good, bad

    def _store(self, records: list[Any]) -> asyncio.Future[bool] | None:
        return self.journal.append(records) if self.journal is not None and records else None

    def _on_deltas(self, m: Deltas, sender: str) -> None:
        if self._is_self(m.sender, m.instance):
            return
        self.stats["batches_in"] += 1
        good, bad = self._apply(m.records, sender)
        stored = self._store(good)
        if m.wid and self.journal is not None:
            self._spawn(self._ack(stored, m, bad))

    async def _ack(self, stored: asyncio.Future[bool] | None, m: Deltas, bad: list[str]) -> None:
        if stored is not None and not await stored:
            return  # not on disk: never acknowledge
        await self._publish(self._direct(m.sender), Ack(self.replica_id, m.instance, m.wid, bad))

    def _on_ack(self, m: Ack) -> None:
        batch = self._wids.get(m.wid)
        if batch is None or m.instance != self.instance:
            self.stats["acks_late"] += 1
            return
        self.stats["acks_in"] += 1
        batch.acks.setdefault(m.wid, {})[m.sender] = frozenset(m.bad)
        batch.event.set()

    # -- announcements and anti-entropy -----------------------------------------------

    def _hello(self, bye: bool = False) -> Hello:
        return Hello(
            self.replica_id, self.instance, self.durable, self.index.top(), len(self.state), bye
        )

    def _summary(self) -> Summary:
        return Summary(self.replica_id, self.instance, self.durable, self.index.buckets())

    async def _gossip_loop(self) -> None:
        """Each round: announce, forget silent peers, and repair with one random peer
        whose last announced top differs (classic anti-entropy: one exchange per replica
        per round, however many replicas; each exchange repairs both sides)."""
        subject = self._area("ctx", "hello")
        while True:
            self.state.expire()
            self.forget_dropped()
            await self._publish(subject, self._hello())
            horizon = self._loop.time() - 3.5 * self.gossip_interval
            for replica in [r for r, p in self._peers.items() if p.seen < horizon]:
                del self._peers[replica]
            top = self.index.top()
            differ = [r for r, p in self._peers.items() if p.top != top and r not in self._syncing]
            if differ:
                self._spawn(self._sync_quietly(random.choice(differ)))
            await asyncio.sleep(self.gossip_interval * random.uniform(0.8, 1.2))

    def _on_hello(self, m: Hello) -> None:
        if self._is_self(m.sender, m.instance):
            return
        if m.bye:
            self._peers.pop(m.sender, None)
            return
        self._peers[m.sender] = _Peer(m.durable, m.instance, self._loop.time(), m.top)

    async def _sync_quietly(self, peer: str) -> None:
        if peer in self._syncing:
            return
        self._syncing.add(peer)
        try:
            # background and read-only: the adaptive timeout (RFC 6298) per family; a miss
            # doubles it and the next gossip round tries again
            await self._sync(peer, timeout=None)
        except (AmcpError, CrdtError) as exc:
            self.stats["syncs_failed"] += 1
            log.debug("replica %s: anti-entropy with %s failed: %s", self.replica_id, peer, exc)
        finally:
            self._syncing.discard(peer)

    async def _request(self, peer: str, msg: Any, timeout: float | None = REQUEST_TIMEOUT) -> Any:
        reply = await self.bus.request(
            self._direct(peer), msg.to_wire(), timeout=timeout, kind=KIND
        )
        return parse(reply.body)

    async def _sync(
        self, peer: str, summary: Summary | None = None, timeout: float | None = REQUEST_TIMEOUT
    ) -> None:
        """Make this replica and `peer` equal on every bucket that differs."""
        if summary is None:
            summary = await self._request(peer, SumRequest(self.replica_id), timeout)
            if not isinstance(summary, Summary):
                raise CrdtDecodeError("expected a summary")
        diff = differing(self.index.buckets(), summary.buckets)
        for group in group_buckets(self.index, diff, MAX_PULL_KEYS):
            await self._pull(peer, group, None, timeout)
        self.stats["syncs"] += 1

    async def _pull(
        self,
        peer: str,
        buckets: list[int] | None,
        keys: list[str] | None,
        timeout: float | None = REQUEST_TIMEOUT,
    ) -> None:
        """Fetch `peer`'s states of the keys in scope it holds differently, and push back
        the ones it wants. Pages until the peer has nothing more."""
        for _ in range(MAX_PULL_ROUNDS):
            scope = self.index.keys_in(buckets) if buckets is not None else keys or []
            reply = await self._request(
                peer, Pull(self.replica_id, buckets, keys, self.index.digests(scope)), timeout
            )
            if not isinstance(reply, PullReply) or reply.sender != peer:
                raise CrdtDecodeError("expected a pull reply from the peer asked")
            good, _ = self._apply(reply.records, peer)
            self._store(good)
            if reply.want:
                await self._push(peer, reply.want)
            if not reply.more:
                return

    async def _push(self, peer: str, keys: list[str]) -> None:
        records = [self.state.full_delta(k).to_wire() for k in keys if k in self.state]
        await self._barrier()
        await self._send_records(self._direct(peer), records, None)

    async def _answer_pull(self, msg: Message, m: Pull) -> None:
        scope = (
            self.index.keys_in(m.buckets) if m.buckets is not None else sorted(set(m.keys or ()))
        )
        answer = answer_pull(self.state, scope, m.digests, self._budget)
        await self._barrier()
        reply = PullReply(self.replica_id, self.durable, answer.records, answer.want, answer.more)
        self.stats["pulls_served"] += 1
        await msg.respond(reply.to_wire(), kind=KIND)

    # -- reads ------------------------------------------------------------------------

    async def read(self, level: Level, timeout: float, keys: list[str] | None = None) -> int:
        """Merge the states of `level` replicas into this one (all keys, or `keys`) and
        return how many answered; ReadConcernError if too few answer in time."""
        if level == "local":
            return 1
        answered, members = await self._gather(level, timeout, keys)
        need = self._needed(level, members)
        if len(answered) < need:
            raise ReadConcernError(len(answered), need, level, timeout, members=len(members))
        return len(answered)

    async def fetch(
        self, key: str, level: Level, timeout: float, found: Callable[[], bool]
    ) -> tuple[frozenset[str], frozenset[str]]:
        """Merge the members' states of `key` until `found()` holds with `level` answers in,
        or every member has answered, or `timeout`: (members that answered, members). A
        replica that has reached no member yet first catches up from a peer, which brings
        the member set."""
        deadline = self._loop.time() + timeout
        if not self._registered():
            await self._bootstrap(timeout / 2)  # two groups asked: within the timeout
        left = max(deadline - self._loop.time(), 0.0)
        answered, members = await self._gather(level, left, [key], found)
        return frozenset(answered), members

    async def _gather(
        self,
        level: Level,
        timeout: float,
        keys: list[str] | None,
        found: Callable[[], bool] | None = None,
    ) -> tuple[set[str], frozenset[str]]:
        """Ask the members for their states of `keys` (all keys for None) until `level`
        answers are in (and `found()` holds, if given) or the deadline passes."""
        deadline = self._loop.time() + timeout
        members = self.members()
        answered = {self.replica_id} & members if self.durable else set()

        async def ask(member: str) -> None:
            while True:
                left = deadline - self._loop.time()
                try:
                    if keys is None:
                        await self._sync(member, timeout=left)
                    else:
                        await self._pull(member, None, keys, left)
                except (NoResponders, RequestTimeout, CrdtDecodeError):
                    if deadline - self._loop.time() <= RETRY_FIRST:
                        return
                    await asyncio.sleep(RETRY_FIRST)  # a member restarting: ask again
                    continue
                answered.add(member)
                return

        def enough() -> bool:
            # Re-counted as answers arrive: a sync may bring the registered member set.
            return len(answered) >= self._needed(level, members) and (found is None or found())

        pending = {self._loop.create_task(ask(m)) for m in sorted(members - answered)}
        try:
            while not enough() and pending:
                left = deadline - self._loop.time()
                if left <= 0:
                    break
                _, pending = await asyncio.wait(
                    pending, timeout=left, return_when=asyncio.FIRST_COMPLETED
                )
        finally:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        return answered, members

    # -- tasks ------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        if self.closed:
            coro.close()
            return
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            if isinstance(exc, AmcpError | PersistenceError):
                log.debug("replica %s: background task failed: %s", self.replica_id, exc)
            else:
                log.error("replica %s: background task failed", self.replica_id, exc_info=exc)
