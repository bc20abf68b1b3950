"""Write concerns: which replicas acknowledged each frame of a batch of local mutations,
re-sending to the members that have not, and waiting until a write's concern is met.

Kept apart from delta gossip: gossip sends every delta once and is done; only a writer
that asked for more than `local` numbers its frames and waits here for the answers.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from crdt.concern import Level, WriteResult
from crdt.errors import WriteConcernError
from crdt.link import Link
from crdt.messages import Ack, Deltas

__all__ = ["LOCAL", "RETRY_FIRST", "RETRY_MAX", "Acks", "WriteBatch"]

RETRY_FIRST = 0.1  # seconds before a write is re-sent to members that have not acked
RETRY_MAX = 1.0
LOCAL = WriteResult(1, 1)


class WriteBatch:
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


class Acks:
    """The batches waiting for acknowledgements, by frame number (wid)."""

    def __init__(self, link: Link) -> None:
        self.link = link
        self._wids: dict[int, WriteBatch] = {}
        self._next_wid = 1

    def number(self, batch: WriteBatch, chunk: list[Any]) -> int:
        """The frame number of `chunk`, one of `batch`'s frames (0: no writer waits)."""
        if not batch.wants_ack:
            return 0
        wid = self._next_wid
        self._next_wid += 1
        self._wids[wid] = batch
        batch.wids.append(wid)
        batch.chunks.append(chunk)
        return wid

    def on_ack(self, m: Ack) -> None:
        batch = self._wids.get(m.wid)
        if batch is None or m.instance != self.link.instance:
            self.link.stats["acks_late"] += 1
            return
        self.link.stats["acks_in"] += 1
        batch.acks.setdefault(m.wid, {})[m.sender] = frozenset(m.bad)
        batch.event.set()

    def wake_all(self) -> None:
        """Wake every waiting writer (on close: they see `closed` and give up)."""
        for batch in self._wids.values():
            batch.event.set()

    async def wait(self, batch: WriteBatch, key: str, level: Level, timeout: float) -> WriteResult:
        """Wait until `level` replicas hold `batch`'s write of `key`, re-sending it to the
        members that have not acknowledged it; WriteConcernError at the timeout."""
        link = self.link
        deadline = link.loop.time() + timeout
        retry = RETRY_FIRST
        next_retry = link.loop.time() + retry
        batch.waiters += 1
        try:
            while True:
                acks, need = self._count(batch, key, level)
                if acks >= need:
                    return LOCAL if level == "local" else WriteResult(acks, need)
                if batch.failed:
                    assert link.journal is not None and link.journal.failure is not None
                    raise link.journal.failure
                now = link.loop.time()
                if now >= deadline or link.closed:
                    members = len(link.peers.members())
                    raise WriteConcernError(acks, need, level, timeout, members=members)
                if now >= next_retry and batch.wids:
                    await self._resend(batch, key)
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

    def _count(self, batch: WriteBatch, key: str, level: Level) -> tuple[int, int]:
        journal = self.link.journal
        on_disk = journal is not None and batch.done.done() and not batch.failed
        if level == "local":
            return int(on_disk or journal is None), 1
        peers = self.link.peers
        members = peers.members()
        acks = batch.acked(key)
        if on_disk:
            acks.add(self.link.replica_id)
        return len(acks & members), peers.needed(level, members)

    async def _resend(self, batch: WriteBatch, key: str) -> None:
        """Re-send the batch to members that have not acknowledged it yet (a lost frame, a
        member restarting)."""
        link = self.link
        missing = link.peers.members() - batch.acked(key) - {link.replica_id}
        for member in sorted(missing):
            for wid, chunk in zip(batch.wids, batch.chunks, strict=True):
                if member not in batch.acks.get(wid, {}):
                    msg = Deltas(link.replica_id, link.instance, chunk, wid)
                    await link.publish(link.direct(member), msg)
        link.stats["resends"] += 1
