"""What every part of the replicator shares: this replica's identity, state, journal and
counters, the bus with the `ctx` subjects, the background tasks, and the one way records
from other replicas are checked and merged into the state.

Kept apart so delta gossip, anti-entropy, bootstrap and reads each hold a `Link` rather
than each other, and a record merges the same way whichever of them brought it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

from amcp import Bus, Message
from amcp.errors import AmcpError, EncodeError
from amcp.ratelog import RateLimitedLog
from crdt.errors import ClockDriftError, CrdtDecodeError, CrdtTypeMismatch, PersistenceError
from crdt.journal import Journal
from crdt.messages import check_replica_id, parse
from crdt.peers import MEMBERS_KEY, PeerTable
from crdt.state import Delta, ReplicaState
from crdt.sync import DigestIndex

__all__ = ["KIND", "REQUEST_TIMEOUT", "Link"]

log = logging.getLogger("amcp.crdt")
KIND = "ctx"
REQUEST_TIMEOUT = 2.0  # anti-entropy requests


class Link:
    """One replica's shared parts. `closed` is set once the replicator has stopped."""

    def __init__(
        self,
        bus: Bus,
        state: ReplicaState,
        journal: Journal | None,
        on_change: Callable[[str], None] | None,
    ) -> None:
        self.bus = bus
        self.state = state
        self.journal = journal
        self.replica_id = check_replica_id(state.replica_id)
        self.instance = secrets.randbits(62) | 1  # never 0
        self.on_change = on_change
        # ("pre" | "post", info) around each peer batch merged: the agent's sync hooks
        self.on_sync: Callable[[str, dict[str, Any]], None] | None = None
        self.index = DigestIndex(state)
        self.peers = PeerTable(state, self.replica_id, journal is not None)
        self.stats: Counter[str] = Counter()
        self.area = bus.subjects.area
        self.budget = bus.limits.max_frame_bytes // 2
        self.loop = asyncio.get_running_loop()
        self.ratelog = RateLimitedLog(log)
        self.closed = False
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def durable(self) -> bool:
        return self.journal is not None

    def direct(self, replica: str) -> str:
        """`replica`'s own subject."""
        return self.area("ctx", "rep", replica)

    # -- sending ----------------------------------------------------------------------

    async def publish(self, subject: str, msg: Any) -> None:
        try:
            await self.bus.publish(subject, msg.to_wire(), kind=KIND)
        except EncodeError as exc:
            self.stats["oversize"] += 1
            self.ratelog.log(logging.ERROR, "oversize", "cannot send on %s: %s", subject, exc)

    async def request(self, peer: str, msg: Any, timeout: float | None = REQUEST_TIMEOUT) -> Any:
        reply = await self.bus.request(self.direct(peer), msg.to_wire(), timeout=timeout, kind=KIND)
        return parse(reply.body)

    # -- receiving --------------------------------------------------------------------

    def parse(self, msg: Message) -> Any:
        try:
            return parse(msg.body)
        except CrdtDecodeError as exc:
            self.reject("malformed", msg.sender, exc)
            return None

    def reject(self, reason: str, sender: str, exc: Exception) -> None:
        self.stats[f"rejected_{reason}"] += 1
        self.ratelog.log(
            logging.WARNING,
            reason,
            "replica %s refused input from %s: %s",
            self.replica_id,
            sender,
            exc,
        )

    def is_self(self, sender: str, instance: int) -> bool:
        if sender != self.replica_id:
            return False
        if instance and instance != self.instance:  # 0: not on the wire
            self.stats["duplicate_id"] += 1
            self.ratelog.log(
                logging.ERROR, "duplicate", "another live replica uses the id %s", sender
            )
        return True

    # -- merging into the state -------------------------------------------------------

    def apply(self, records: list[Any], sender: str) -> tuple[list[Any], list[str]]:
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
                self.reject("type", sender, exc)
            except ClockDriftError as exc:
                self.reject("clock", sender, exc)
            except CrdtDecodeError as exc:
                self.reject("malformed", sender, exc)
            else:
                self.touched(delta.key, changed)
                if delta.key in self.state:  # else expired: nothing to keep, nothing wrong
                    good.append(record)
                    self.stats["applied"] += 1
                continue
            if key is not None:
                bad.append(key)
        return good, bad

    def store(self, records: list[Any]) -> asyncio.Future[bool] | None:
        return self.journal.append(records) if self.journal is not None and records else None

    def touched(self, key: str, changed: bool) -> None:
        self.forget_dropped()
        if key not in self.state:  # an expired register: refused, or dropped at once
            self.stats["expired"] += 1
            return
        self.index.touch(key)
        if key == MEMBERS_KEY:
            self.peers.forget_registered()
        if changed and self.on_change is not None:
            self.on_change(key)

    def forget_dropped(self) -> None:
        """Take the keys retention dropped out of the anti-entropy index."""
        for key in self.state.drain_dropped():
            self.index.discard(key)
            self.stats["dropped"] += 1

    # -- background tasks -------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        if self.closed:
            coro.close()
            return
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    async def cancel_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            if isinstance(exc, AmcpError | PersistenceError):
                log.debug("replica %s: background task failed: %s", self.replica_id, exc)
            else:
                log.error("replica %s: background task failed", self.replica_id, exc_info=exc)
