"""Read concerns: merging the states of enough members into this replica before a read
returns, for every key or the few a read names.

Kept apart from anti-entropy, whose exchanges it reuses: anti-entropy repairs with one
peer in the background, a read asks every member at once and counts the answers against
a deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from amcp.errors import NoResponders, RequestTimeout
from crdt.acks import RETRY_FIRST
from crdt.antientropy import AntiEntropy
from crdt.bootstrap import Bootstrap
from crdt.concern import Level
from crdt.errors import CrdtDecodeError, ReadConcernError
from crdt.link import Link

__all__ = ["Reads"]


class Reads:
    """Gathering members' states for reads with a concern."""

    def __init__(self, link: Link, antientropy: AntiEntropy, bootstrap: Bootstrap) -> None:
        self.link = link
        self.antientropy = antientropy
        self.bootstrap = bootstrap

    async def read(self, level: Level, timeout: float, keys: list[str] | None = None) -> int:
        """Merge the states of `level` replicas into this one (all keys, or `keys`) and
        return how many answered; ReadConcernError if too few answer in time."""
        if level == "local":
            return 1
        answered, members = await self._gather(level, timeout, keys)
        need = self.link.peers.needed(level, members)
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
        loop = self.link.loop
        deadline = loop.time() + timeout
        if not self.link.peers.registered():
            await self.bootstrap.catch_up(timeout / 2)  # two groups asked: within the timeout
        left = max(deadline - loop.time(), 0.0)
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
        link = self.link
        loop = link.loop
        deadline = loop.time() + timeout
        members = link.peers.members()
        answered = {link.replica_id} & members if link.durable else set()

        async def ask(member: str) -> None:
            while True:
                left = deadline - loop.time()
                try:
                    if keys is None:
                        await self.antientropy.sync(member, timeout=left)
                    else:
                        await self.antientropy.pull(member, None, keys, left)
                except (NoResponders, RequestTimeout, CrdtDecodeError):
                    if deadline - loop.time() <= RETRY_FIRST:
                        return
                    await asyncio.sleep(RETRY_FIRST)  # a member restarting: ask again
                    continue
                answered.add(member)
                return

        def enough() -> bool:
            # Re-counted as answers arrive: a sync may bring the registered member set.
            return len(answered) >= link.peers.needed(level, members) and (found is None or found())

        pending = {loop.create_task(ask(m)) for m in sorted(members - answered)}
        try:
            while not enough() and pending:
                left = deadline - loop.time()
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
