"""Announcements and anti-entropy: each round a replica says who it is and the top hash
of its state, and repairs with one peer whose top differs by exchanging the full states
of the keys in differing buckets (pulling what the peer holds differently, pushing back
what it wants).

Kept apart from delta gossip: deltas are the fast path and may be lost; this is the slow
path that makes replicas equal anyway, and what bootstrap and reads reuse to catch up.
"""

from __future__ import annotations

import asyncio
import logging
import random

from amcp import Message
from amcp.errors import AmcpError
from crdt.deltas import DeltaGossip
from crdt.errors import CrdtDecodeError, CrdtError
from crdt.link import KIND, REQUEST_TIMEOUT, Link
from crdt.messages import BucketSummary, Hello, Pull, PullReply, SumRequest
from crdt.sync import answer_pull, differing, group_buckets

__all__ = ["MAX_PULL_KEYS", "MAX_PULL_ROUNDS", "AntiEntropy"]

log = logging.getLogger("amcp.crdt")
MAX_PULL_KEYS = 2048  # digests per pull request
MAX_PULL_ROUNDS = 256  # pages of one pull before giving up until the next round


class AntiEntropy:
    """The announcing rounds, and state exchanges with one peer at a time."""

    def __init__(self, link: Link, deltas: DeltaGossip, interval: float) -> None:
        self.link = link
        self.deltas = deltas
        self.interval = interval
        self._syncing: set[str] = set()

    def hello(self, bye: bool = False) -> Hello:
        link = self.link
        return Hello(
            link.replica_id, link.instance, link.durable, link.index.top(), len(link.state), bye
        )

    def summary(self) -> BucketSummary:
        link = self.link
        return BucketSummary(link.replica_id, link.instance, link.durable, link.index.buckets())

    async def run(self) -> None:
        """Each round: announce, forget silent peers, and repair with one random peer
        whose last announced top differs (classic anti-entropy: one exchange per replica
        per round, however many replicas; each exchange repairs both sides)."""
        link = self.link
        subject = link.area("ctx", "hello")
        while True:
            link.state.expire()
            link.forget_dropped()
            await link.publish(subject, self.hello())
            link.peers.drop_silent(link.loop.time() - 3.5 * self.interval)
            differ = link.peers.differing(link.index.top(), self._syncing)
            if differ:
                link.spawn(self.sync_quietly(random.choice(differ)))
            await asyncio.sleep(self.interval * random.uniform(0.8, 1.2))

    def on_hello(self, m: Hello) -> None:
        if self.link.is_self(m.sender, m.instance):
            return
        self.link.peers.hello(m, self.link.loop.time())

    async def sync_quietly(self, peer: str) -> None:
        if peer in self._syncing:
            return
        self._syncing.add(peer)
        try:
            # background and read-only: the adaptive timeout (RFC 6298) per family; a miss
            # doubles it and the next gossip round tries again
            await self.sync(peer, timeout=None)
        except (AmcpError, CrdtError) as exc:
            self.link.stats["syncs_failed"] += 1
            log.debug(
                "replica %s: anti-entropy with %s failed: %s", self.link.replica_id, peer, exc
            )
        finally:
            self._syncing.discard(peer)

    async def sync(
        self,
        peer: str,
        summary: BucketSummary | None = None,
        timeout: float | None = REQUEST_TIMEOUT,
    ) -> None:
        """Make this replica and `peer` equal on every bucket that differs."""
        link = self.link
        if summary is None:
            summary = await link.request(peer, SumRequest(link.replica_id), timeout)
            if not isinstance(summary, BucketSummary):
                raise CrdtDecodeError("expected a summary")
        diff = differing(link.index.buckets(), summary.buckets)
        for group in group_buckets(link.index, diff, MAX_PULL_KEYS):
            await self.pull(peer, group, None, timeout)
        link.stats["syncs"] += 1

    async def pull(
        self,
        peer: str,
        buckets: list[int] | None,
        keys: list[str] | None,
        timeout: float | None = REQUEST_TIMEOUT,
    ) -> None:
        """Fetch `peer`'s states of the keys in scope it holds differently, and push back
        the ones it wants. Pages until the peer has nothing more."""
        link = self.link
        for _ in range(MAX_PULL_ROUNDS):
            scope = link.index.keys_in(buckets) if buckets is not None else keys or []
            reply = await link.request(
                peer, Pull(link.replica_id, buckets, keys, link.index.digests(scope)), timeout
            )
            if not isinstance(reply, PullReply) or reply.sender != peer:
                raise CrdtDecodeError("expected a pull reply from the peer asked")
            good, _ = link.apply(reply.records, peer)
            link.store(good)
            if reply.want:
                await self._push(peer, reply.want)
            if not reply.more:
                return

    async def _push(self, peer: str, keys: list[str]) -> None:
        link = self.link
        records = [link.state.full_delta(k).to_wire() for k in keys if k in link.state]
        await self.deltas.barrier()
        await self.deltas.send_records(link.direct(peer), records, None)

    async def answer_pull(self, msg: Message, m: Pull) -> None:
        link = self.link
        scope = (
            link.index.keys_in(m.buckets) if m.buckets is not None else sorted(set(m.keys or ()))
        )
        answer = answer_pull(link.state, scope, m.digests, link.budget)
        await self.deltas.barrier()
        reply = PullReply(link.replica_id, link.durable, answer.records, answer.want, answer.more)
        link.stats["pulls_served"] += 1
        await msg.respond(reply.to_wire(), kind=KIND)
