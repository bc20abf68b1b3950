"""Faults across hosts: a NATS node SIGKILLed under load, a minority host cut off, lossy
links, and a rolling restart of every node, each under majority CRDT writes and quorum
votes from the driver. What must hold: no acknowledged write and no committed decision is
lost, a minority cannot commit while the majority goes on, and after healing every
replica converges and the minority knows the decisions it missed.
"""

from __future__ import annotations

import asyncio

import pytest

from amcp import Bus
from consensus.model import Outcome
from consensus.record import DECISION_PREFIX, _key
from crdt import WriteConcernError
from tests.support.chaos import Chaos, Load
from tests.support.crdt import probe
from tests.support.waiting import wait_until

pytestmark = pytest.mark.chaos


async def _under_load(chaos: Chaos, key: str, fault, node: int | None = None) -> tuple[Load, int]:
    """Run the load (from the driver, on every node or on `node`), apply `fault(load)` (a
    coroutine) once it has acknowledged some writes, keep loading until the fault is done
    and some more writes are acknowledged after it; returns the load and how many writes
    were acknowledged before the fault."""
    load = Load(key)
    stop = asyncio.Event()
    async with chaos.driver(node=node) as (_, store, coordinator):
        runner = asyncio.create_task(chaos.run_load(store, coordinator, load, stop))
        try:
            await wait_until(lambda: len(load.acked) >= 20, 20, what="writes before the fault")
            before = len(load.acked)
            await fault(load)
            after = len(load.acked)
            await wait_until(lambda: len(load.acked) >= after + 20, 30, what="writes after")
        finally:
            stop.set()
            await runner
    return load, before


async def test_sigkilled_node_loses_no_acknowledged_write_or_decision(chaos: Chaos) -> None:
    async def kill_then_restart(_: Load) -> None:
        chaos.cluster.servers[0].kill()  # host 1's server; its agents fail over
        async with chaos.driver() as (bus, _, _):
            await chaos.all_alive(bus)  # every agent reconnected elsewhere, heartbeating
        chaos.restart_node(0)

    load, before = await _under_load(chaos, "kill", kill_then_restart)
    assert before >= 20 and len(load.acked) > before
    assert load.committed, "no decision committed under load"
    async with chaos.driver() as (bus, _, coordinator):
        await chaos.wait_converged(bus, "kill", load.acked, 30)
        await chaos.decisions_kept(coordinator, load)
        await chaos.all_alive(bus)


async def test_minority_cannot_commit_majority_goes_on_then_converges(chaos: Chaos) -> None:
    minority = 2  # one host: one S1 and one S5 of six replicas and three voters
    load = Load("split")
    # a client inside the minority host that joined before the cut (it knows every member)
    async with chaos.driver(host=minority) as (_, inside, inside_coordinator):
        chaos.hosts.cut(minority)
        try:
            with pytest.raises(WriteConcernError):
                await inside.add("split", "minority-majority", write="majority", timeout=2.0)
            vote = await inside_coordinator.coordinate(
                "restart", {}, proposal_id="split-minority", timeout=3.0
            )
            assert vote.decision.outcome is Outcome.NO_QUORUM
            await inside.add("split", "minority-one", write="one", timeout=3.0)  # its own S1/S5

            # the majority goes on: writes and decisions
            async with chaos.driver() as (_, store, coordinator):
                for n in range(20):
                    await store.add("split", f"majority-{n}", write="majority", timeout=3.0)
                    load.acked.append(f"majority-{n}")
                for n in range(3):
                    await chaos.decide(coordinator, f"split-p{n}", load)
            assert load.committed == [f"split-p{n}" for n in range(3)]
        finally:
            chaos.hosts.heal(minority)

    async with chaos.driver() as (bus, _, coordinator):
        await chaos.wait_converged(bus, "split", [*load.acked, "minority-one"], 60)
        await chaos.all_alive(bus)
        await chaos.decisions_kept(coordinator, load)
        # the minority's S5 knows the decisions committed while it was cut off
        s5 = next(a["id"] for a in chaos.cluster.state["agents"] if a["node"] == minority
                  and a["role"] == "s5")  # fmt: skip
        await _learns_decisions(bus, s5, load.committed)


async def _learns_decisions(bus: Bus, replica: str, ids: list[str]) -> None:
    """Until `replica` holds the decision record of every proposal in `ids`."""

    async def holds() -> bool:
        for proposal_id in ids:
            if await probe(bus, replica, _key(DECISION_PREFIX, proposal_id)) is None:
                return False
        return True

    await wait_until(holds, 30, interval=0.2, what=f"{replica} to learn the decisions")


async def test_lossy_link_majority_goes_on_and_loses_nothing(chaos: Chaos) -> None:
    """Host 3 drops 5% of its packets both ways. Its S1 and S5 are two of the six replicas
    and one of the three voters, so the four replicas and two voters on hosts 1 and 2 are a
    majority: majority writes and votes go on, whatever the lossy host does.

    Found (issue 8): the cBPF filter's jump offsets were swapped, so "5%" dropped 95% of
    host 3's packets (measured with tc's counters). The driver's connection goes to a node
    picked at random; when it was node 3, its link was all but dead and every write missed
    its deadline, which fits "about half the runs". Not ours in the write path: with a
    real 5% the load below sits on node 3 itself, so every write and ack crosses the lossy
    link, and 300 of 300 writes were acknowledged in each of 5 runs (a lost segment costs
    a TCP retransmission, 200 ms minimum RTO). The assertion allows 5% failed writes for a
    busy machine. Delay is the other degraded-link fault: tests/chaos/test_link_delay.py."""
    lossy_host = 2
    stats: dict[str, float] = {}

    async def lossy(load: Load) -> None:
        acked, failed, committed = len(load.acked), load.failed, len(load.committed)
        chaos.hosts.loss(lossy_host, 5)
        try:
            await wait_until(
                lambda: len(load.acked) + load.failed >= acked + failed + 300,
                90,
                what="300 writes under loss",
            )
            sent, dropped = chaos.hosts.counted(lossy_host)
        finally:
            chaos.hosts.loss(lossy_host, 0)
        stats.update(
            acked=len(load.acked) - acked,
            failed=load.failed - failed,
            committed=len(load.committed) - committed,
            dropped=dropped / max(1, sent + dropped),
        )

    # the driver on node 3: every write and every ack crosses the lossy link
    load, _ = await _under_load(chaos, "lossy", lossy, node=lossy_host)
    print(f"under 5% loss: {stats}")
    assert 0.01 <= stats["dropped"] <= 0.15, f"the link did not drop about 5%: {stats}"
    assert stats["failed"] <= 0.05 * (stats["acked"] + stats["failed"]), stats
    assert stats["committed"] >= 1, f"no vote committed under loss: {stats}"
    assert not load.hung, f"votes with a 2 s deadline still running after 30 s: {load.hung}"
    async with chaos.driver() as (bus, _, coordinator):
        await chaos.wait_converged(bus, "lossy", load.acked, 60)
        await chaos.decisions_kept(coordinator, load)


async def test_rolling_restart_of_every_node_loses_nothing(chaos: Chaos) -> None:
    async def roll(_: Load) -> None:
        for i in range(len(chaos.cluster.servers)):
            chaos.cluster.servers[i].stop()  # SIGTERM: a clean shutdown, then back
            chaos.restart_node(i)
            async with chaos.driver() as (bus, _, _):
                await chaos.all_alive(bus)

    load, before = await _under_load(chaos, "roll", roll)
    assert len(load.acked) > before
    async with chaos.driver() as (bus, _, coordinator):
        await chaos.wait_converged(bus, "roll", load.acked, 60)
        await chaos.decisions_kept(coordinator, load)
        await chaos.all_alive(bus)
