"""A 3-host cluster for chaos tests: each NATS node and its agents (an S1 and an S5 voter
per host, all durable CRDT replicas) in a network namespace of its own, the test itself in
a fourth (the driver), all on one bridge. Built once per module; each test leaves it whole.

A test that cannot get network namespaces fails with the reason; it never skips.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agents.cluster import LocalCluster
from agents.runtime.client import AgentClient
from amcp import Bus
from amcp.errors import AmcpError
from consensus.coordinator import Coordinator
from consensus.model import Outcome
from crdt import ContextStore
from crdt.errors import CrdtError
from tests.chaos.netns import Hosts, NetnsUnavailable
from tests.integration.crdt.test_cluster import probe
from tests.support.waiting import wait_until

NODES = 3
AGENTS = {"s1": NODES, "s5": NODES}  # one of each per host; the S5s are the voters
CLUSTER = "chaos"


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


@pytest.fixture(scope="module")
def chaos(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Chaos]:
    """The cluster of the module's `AGENTS` (role -> count), one S1 and S5 per host if none."""
    try:
        hosts = Hosts(NODES).__enter__()
    except NetnsUnavailable as exc:
        pytest.fail(f"chaos tests need network namespaces, veth and tc as root: {exc}")
    try:
        with hosts.inside(hosts.driver):
            started = time.monotonic()
            cluster = LocalCluster.up(
                Path(tmp_path_factory.mktemp("chaos")),
                nodes=NODES,
                agents=getattr(request.module, "AGENTS", AGENTS),
                cluster=CLUSTER,
                hosts=hosts.addresses,
                enter=hosts.host,
                timeout=90,
            )
            print(f"chaos cluster up in {time.monotonic() - started:.1f}s")
            try:
                yield Chaos(hosts, cluster)
            finally:
                cluster.down(timeout=15)
    finally:
        hosts.close()
