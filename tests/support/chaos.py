"""The chaos tests' harness: hosts in network namespaces (tests/support/netns.py), a local
cluster on them, and the driver's own connections: a load of majority writes and votes,
and the checks that nothing acknowledged was lost."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from dataclasses import dataclass, field
from typing import Any

from agents.cluster import LocalCluster
from agents.runtime.client import AgentClient
from amcp import Bus
from amcp.errors import AmcpError
from consensus.coordinator import Coordinator
from consensus.model import Outcome
from crdt import ContextStore
from crdt.errors import CrdtError
from tests.support.crdt import probe
from tests.support.netns import Hosts
from tests.support.waiting import wait_until


@dataclass
class Load:
    """What the driver wrote and decided, keeping only what was acknowledged."""

    key: str
    acked: list[str] = field(default_factory=list)
    failed: int = 0
    committed: list[str] = field(default_factory=list)
    undecided: int = 0
    hung: list[str] = field(default_factory=list)  # votes that outlived their deadline


class Chaos:
    """The hosts, the cluster on them, and the driver's own connections."""

    def __init__(self, hosts: Hosts, cluster: LocalCluster) -> None:
        self.hosts = hosts
        self.cluster = cluster
        self.replicas = [a["id"] for a in cluster.state["agents"]]
        self._ids = itertools.count()

    # -- the driver -------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def driver(self, host: int | None = None, node: int | None = None) -> Any:
        """An admin bus, an in-memory context replica and a coordinator: from the driver
        on every node (or on `node` only), or from inside `host` on its own node only."""
        sender = f"driver-{next(self._ids)}"
        if host is None:
            urls = None if node is None else [self.cluster.urls[node]]
            bus = await self.cluster.connect(sender=sender, urls=urls)
        else:
            with self.hosts.host(host):
                bus = await self.cluster.connect(sender=sender, urls=[self.cluster.urls[host]])
        store = await ContextStore.open(bus)
        coordinator = await Coordinator.open(bus, store=store)
        try:
            yield bus, store, coordinator
        finally:
            for closing in (coordinator.close(), store.close(), bus.close()):
                with contextlib.suppress(Exception):
                    await closing

    async def run_load(
        self, store: ContextStore, coordinator: Coordinator, load: Load, stop: asyncio.Event
    ) -> None:
        """Majority writes of unique items, and a vote every tenth write, until `stop`."""
        for n in itertools.count():
            if stop.is_set():
                return
            item = f"{load.key}-{n}"
            try:
                await store.add(load.key, item, write="majority", timeout=2.0)
                load.acked.append(item)
            except (AmcpError, CrdtError):
                load.failed += 1
            if n % 10 == 0:
                await self.decide(coordinator, f"{load.key}-p{n}", load)
            await asyncio.sleep(0.01)

    async def decide(self, coordinator: Coordinator, proposal_id: str, load: Load) -> None:
        try:  # a vote must end by itself: its own deadline is 2 s, allow it 30
            result = await asyncio.wait_for(
                coordinator.coordinate(
                    "restart", {"id": proposal_id}, proposal_id=proposal_id, timeout=2.0
                ),
                30.0,
            )
        except TimeoutError:
            load.hung.append(proposal_id)
            return
        except AmcpError:
            load.undecided += 1
            return
        if result.decision.outcome is Outcome.COMMITTED and result.recorded is not None:
            load.committed.append(proposal_id)
        else:
            load.undecided += 1

    # -- checks -----------------------------------------------------------------------

    async def replica_holds(self, bus: Bus, replica: str, key: str, items: list[str]) -> bool:
        try:
            held = await probe(bus, replica, key)
        except AmcpError:
            return False
        return set(items) <= set(held or ())

    async def wait_converged(self, bus: Bus, key: str, items: list[str], timeout: float) -> None:
        """Until every replica holds every item of `items` under `key`."""
        for replica in self.replicas:
            await wait_until(
                lambda r=replica: self.replica_holds(bus, r, key, items),
                timeout,
                interval=0.2,
                what=f"replica {replica} to hold all {len(items)} acknowledged items of {key}",
            )

    async def decisions_kept(self, coordinator: Coordinator, load: Load) -> None:
        """Every committed proposal, proposed again, returns its first decision: committed."""
        for proposal_id in load.committed:
            again = await coordinator.coordinate(
                "restart", {"id": proposal_id}, proposal_id=proposal_id, timeout=3.0
            )
            assert again.replayed, f"{proposal_id} was decided anew"
            assert again.decision.outcome is Outcome.COMMITTED, proposal_id

    async def all_alive(self, bus: Bus, timeout: float = 20.0) -> None:
        client = AgentClient(bus, timeout=2.0)

        async def alive() -> bool:
            try:
                view = await client.members()
            except AmcpError:
                return False
            live = {m.id for m in view.members if m.liveness == "alive"}
            return set(self.replicas) <= live

        await wait_until(alive, timeout, interval=0.2, what="every agent alive")

    def node_running(self, i: int) -> bool:
        return self.cluster.servers[i].running

    def restart_node(self, i: int) -> None:
        with self.hosts.host(i):
            self.cluster.servers[i].start(timeout=30)
