"""A partition on a real 3-node NATS cluster: two voters and a proposer on server A, three
voters and a proposer on server B. With B killed, the minority on A still talks among
itself, and cannot commit: the majority counts all five registered voters. When B is back,
the majority side commits again.

The servers do not advertise each other to clients (`no_advertise`), so a client of B
cannot fail over to A: killing B cuts its clients off instead of moving them, which is
what a partition does. (The shared `nats_cluster` fixture advertises, as a deployment
should.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agents import Liveness
from amcp import Keyring, NatsServer
from amcp.server import free_port
from consensus import Outcome, Thresholds, VotePolicy
from tests.support.consensus import Members
from tests.support.waiting import wait_until

MINORITY = ("m1", "m2")
MAJORITY = ("j1", "j2", "j3")


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[NatsServer]]:
    """Three routed nats-servers whose clients know only the server they were given."""
    ports = [free_port() for _ in range(3)]
    nodes = []
    for i, port in enumerate(ports):
        routes = ", ".join(f'"nats-route://127.0.0.1:{p}"' for p in ports if p != port)
        cluster = (
            f"cluster {{\n  name: split\n  listen: 127.0.0.1:{port}\n"
            f"  routes: [{routes}]\n  no_advertise: true\n}}\n"
        )
        nodes.append(NatsServer(name=f"split-n{i + 1}", store_dir=tmp_path / f"n{i}",
                                extra_config=cluster))  # fmt: skip
    try:
        for node in nodes:
            node.start(wait=False)
        for node in nodes:
            node.wait_ready()
        yield nodes
    finally:
        for node in nodes:
            node.close()


async def test_a_minority_cut_off_from_the_others_cannot_commit(
    servers: list[NatsServer], keyring: Keyring
) -> None:
    server_a, server_b = servers[0], servers[1]
    split = Members(server_a.url, keyring)
    try:
        await _partition(split, server_a, server_b)
    finally:
        await split.close()


async def _partition(split: Members, server_a: NatsServer, server_b: NatsServer) -> None:
    eager = VotePolicy(Thresholds(confidence_min=0.0))  # yes even when it sees 2 of 5 alive
    for voter in MINORITY:
        await split.add(voter, url=server_a.url, policy=eager)
    for voter in MAJORITY:
        await split.add(voter, url=server_b.url)
    minority = await split.coordinator("on-a", url=server_a.url, voters=5)
    majority = await split.coordinator("on-b", url=server_b.url, voters=5)
    before = await majority.coordinate("restart", {"targets": ["w1"]}, timeout=5)
    assert before.outcome is Outcome.COMMITTED

    server_b.kill()  # the three voters and the proposer on B are cut off
    cut_off = await minority.coordinate("restart", {"targets": ["w1"]}, timeout=2)
    decision = cut_off.decision
    assert decision.outcome is Outcome.NO_QUORUM
    assert len(decision.members) == 5 and decision.summary.needed == 3.0
    assert {v.voter for v in decision.votes} == set(MINORITY)  # they reach each other
    assert decision.summary.yes == 2  # a majority of the live voters, not of the members
    weighted = await minority.coordinate("restart", quorum="weighted", timeout=1)
    assert weighted.outcome is not Outcome.COMMITTED, weighted.decision

    server_b.start()
    await wait_until(lambda: majority.bus.is_connected, 15, what="the majority reconnected")

    def healed() -> bool:  # the majority's voters see all five alive again (confidence 1)
        return all(
            split.agents[v].bus.is_connected
            and all(m.liveness is Liveness.ALIVE for m in split.agents[v].members())
            for v in MAJORITY
        )

    await wait_until(healed, 20, what="the majority's voters to see everyone again")
    healed = await majority.coordinate("restart", {"targets": ["w1"]}, timeout=5)
    assert healed.outcome is Outcome.COMMITTED, healed.decision
