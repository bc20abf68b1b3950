"""Bootstrap: a replica starting (or one that has reached no member yet) asks the boot
queue groups for one peer, a durable one first, and syncs with it in full, which also
brings the registered member set.

Kept apart because it is the one exchange that asks a queue group rather than a named
peer, and the boot groups are what a replica joins once it has caught up.
"""

from __future__ import annotations

import logging

from amcp.errors import AmcpError, NoResponders, RequestTimeout
from crdt.antientropy import AntiEntropy
from crdt.errors import CrdtDecodeError, CrdtError
from crdt.link import KIND, Link
from crdt.messages import BucketSummary, SumRequest, parse

__all__ = ["Bootstrap"]

log = logging.getLogger("amcp.crdt")


class Bootstrap:
    """Catching up from one peer found through the boot queue groups."""

    def __init__(self, link: Link, antientropy: AntiEntropy) -> None:
        self.link = link
        self.antientropy = antientropy

    def groups(self) -> list[str]:
        """The boot groups this replica serves: durable replicas answer both."""
        return ["any", "durable"] if self.link.durable else ["any"]

    def subject(self, group: str) -> str:
        return self.link.area("ctx", "boot", group)

    async def catch_up(self, timeout: float) -> bool:
        """Sync with the first peer that answers (durable ones asked first); returns
        whether one did."""
        link = self.link
        for group in ("durable", "any"):
            try:
                reply = await link.bus.request(
                    self.subject(group),
                    SumRequest(link.replica_id).to_wire(),
                    timeout=timeout,
                    kind=KIND,
                )
                summary = parse(reply.body)
            except NoResponders:
                continue
            except (RequestTimeout, CrdtDecodeError) as exc:
                log.warning(
                    "replica %s: bootstrap from %s peers failed: %s", link.replica_id, group, exc
                )
                continue
            if isinstance(summary, BucketSummary) and summary.sender != link.replica_id:
                try:
                    await self.antientropy.sync(summary.sender, summary)
                except (AmcpError, CrdtError) as exc:
                    log.warning(
                        "replica %s: bootstrap from %s failed: %s",
                        link.replica_id,
                        summary.sender,
                        exc,
                    )
                    continue
                link.stats["bootstraps"] += 1
                return True
        return False
