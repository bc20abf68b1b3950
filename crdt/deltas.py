"""Delta gossip: local mutations' deltas coalesced per key into batches, put on disk
(durable replicas), sent to every replica in frames of bounded size; and the deltas other
replicas send, merged and acknowledged once on disk.

Kept apart from anti-entropy, which repairs whatever this fast path lost, and from the
write-concern bookkeeping (`crdt.acks`), which only a waiting writer needs.

In a trace (amcp.tracing), a batch travels in the span of the write that opened it (its
frames carry that traceparent) and is a span `crdt.replicate` under it; a replica merging
it records `crdt.merge` under the same span. Both go to the span listeners only: they are
leaves, so what a merge causes (an executor's run of a replicated decision) stays under
the writer's span, where the audit log has it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

from amcp.familycounts import family_of
from amcp.tracing import SpanContext, current_span, leaf_span, use_span
from crdt.acks import Acks, WriteBatch
from crdt.errors import CrdtError
from crdt.link import Link
from crdt.messages import Ack, Deltas
from crdt.state import TYPES, Delta
from crdt.wire import pack

__all__ = ["DeltaGossip"]

MAX_SYNC_KEYS = 100  # keys of a merged batch named to a sync observer


class DeltaGossip:
    """The outbox of local deltas, its one flushing task, and the inbound deltas."""

    def __init__(self, link: Link, acks: Acks) -> None:
        self.link = link
        self.acks = acks
        self._outbox: dict[str, list[Any]] = {}  # key -> [tag, wire or None, Crdt or None]
        self._open: WriteBatch | None = None
        self._last: WriteBatch | None = None
        self._span: SpanContext | None = None  # the open batch's first writer's span
        self._flusher: asyncio.Task[None] | None = None
        self._lingering: asyncio.TimerHandle | None = None  # starts the flusher when due

    def submit(self, delta: Delta, wants_ack: bool = False, linger: float = 0.0) -> WriteBatch:
        """Queue a local mutation's delta for the next batch (coalesced with any pending
        delta of the same key) and return that batch. With `linger` (seconds) the batch
        may wait that long for later writes to share its frame, if nobody waits on it; a
        write without it, one that wants acknowledgements, or any on a durable replica
        (its writer waits for the disk) sends the batch at once with whatever lingers."""
        link = self.link
        if link.closed:
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
        link.touched(key, delta.changed)
        batch = self._open
        if batch is None:
            batch = self._open = self._last = WriteBatch(link.loop)
            self._span = current_span.get()
        batch.wants_ack = batch.wants_ack or wants_ack
        if self._flusher is None:
            if linger <= 0 or wants_ack or link.journal is not None:
                self._start()
            elif self._lingering is None:
                self._lingering = link.loop.call_later(linger, self._start)
        return batch

    def _start(self) -> None:
        """Send what is queued now (a lingering batch included)."""
        if self._lingering is not None:
            self._lingering.cancel()
            self._lingering = None
        if self._flusher is None and self._outbox:
            self._flusher = self.link.loop.create_task(self._flush())

    async def drain(self) -> None:
        """Wait until every delta submitted so far has been sent (or failed): a lingering
        batch goes now."""
        self._start()
        while self._flusher is not None:
            await asyncio.shield(self._flusher)

    async def _flush(self) -> None:
        try:
            while self._outbox:
                batch, self._open = self._open, None
                outbox, self._outbox = self._outbox, {}
                span, self._span = self._span, None
                assert batch is not None
                with use_span(span):
                    await self._send_batch(batch, outbox)
        finally:
            self._flusher = None

    async def _send_batch(self, batch: WriteBatch, outbox: dict[str, list[Any]]) -> None:
        link = self.link
        started = time.time_ns()
        subject = link.area("ctx", "delta")
        records = [
            [key, tag, wire if wire is not None else crdt.to_wire()]
            for key, (tag, wire, crdt) in outbox.items()
        ]
        if link.journal is not None and not await link.journal.append(records):
            batch.failed = True
        batch.done.set_result(None)
        batch.event.set()
        outcome = "ok"
        if batch.failed:
            outcome = "not_stored"  # never send what is not on disk; the writer errs
        else:
            try:
                await self.send_records(subject, records, batch)
            except Exception as exc:  # nats-py raises its own types when disconnected
                outcome = "send_failed"
                link.stats["send_failed"] += 1
                link.ratelog.log(
                    logging.WARNING,
                    "send",
                    "replica %s could not send deltas (anti-entropy will): %s",
                    link.replica_id,
                    exc,
                )
        leaf_span(
            "crdt.replicate",
            link.replica_id,
            started,
            outcome,
            family=family_of(subject),
            records=len(records),
            **{"messaging.operation.type": "send"},
        )

    async def send_records(
        self, subject: str, records: list[Any], batch: WriteBatch | None
    ) -> None:
        """Publish records in frames of at most the byte budget; numbered for acks when a
        writer waits for them."""
        link = self.link
        for chunk in self._chunks(records):
            wid = self.acks.number(batch, chunk) if batch is not None else 0
            await link.publish(subject, Deltas(link.replica_id, link.instance, chunk, wid))
            link.stats["deltas_out"] += len(chunk)

    def _chunks(self, records: list[Any]) -> Iterable[list[Any]]:
        if len(records) == 1:
            yield records
            return
        chunk: list[Any] = []
        size = 0
        for record in records:
            cost = len(pack(record))
            if chunk and size + cost > self.link.budget:
                yield chunk
                chunk, size = [], 0
            chunk.append(record)
            size += cost
        if chunk:
            yield chunk

    async def barrier(self) -> None:
        """Wait until every local mutation made so far is on disk (durable replicas only),
        before any state leaves this replica."""
        journal = self.link.journal
        if journal is not None:
            if self._last is not None:
                await asyncio.shield(self._last.done)
            if journal.failure is not None:
                raise journal.failure  # what is not on disk must not leave

    # -- inbound ----------------------------------------------------------------------

    def on_deltas(self, m: Deltas, sender: str) -> None:
        link = self.link
        if link.is_self(m.sender, m.instance):
            return
        started = time.time_ns()
        link.stats["batches_in"] += 1
        observe = link.on_sync
        if observe is not None:
            observe("pre", {"peer": m.sender, "records": len(m.records)})
        good, bad = link.apply(m.records, sender)
        if observe is not None:
            keys = sorted({r[0] for r in good})[:MAX_SYNC_KEYS]
            observe("post", {"peer": m.sender, "applied": len(good), "refused": bad, "keys": keys})
        stored = link.store(good)
        if m.wid and link.journal is not None:
            link.spawn(self._ack(stored, m, bad))
        leaf_span(
            "crdt.merge",
            link.replica_id,
            started,
            "refused" if bad and not good else "ok",
            peer=m.sender,
            applied=len(good),
            refused=len(bad),
            **{"messaging.operation.type": "process"},
        )

    async def _ack(self, stored: asyncio.Future[bool] | None, m: Deltas, bad: list[str]) -> None:
        if stored is not None and not await stored:
            return  # not on disk: never acknowledge
        link = self.link
        await link.publish(link.direct(m.sender), Ack(link.replica_id, m.instance, m.wid, bad))
