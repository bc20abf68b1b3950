"""A slow link: host 3 holds every packet it sends or receives for 100 ms (netfilter's
queue and a handler process in its namespace, see nfqueue.py), so each round trip across
its link takes at least 200 ms more. First that the delay is real and healing removes it,
measured with NATS PING/PONG; then that under load through the slow host no acknowledged
CRDT write is lost, quorum decisions still commit (slower), and after healing every
replica converges.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from amcp import Bus
from tests.support.chaos import Chaos, Load
from tests.support.waiting import wait_until

pytestmark = pytest.mark.chaos

SLOW = 2  # host 3: one S1, one S5 (of three voters) and node 3
DELAY_MS = 100  # each way


async def _round_trip(bus: Bus, samples: int = 5) -> float:
    """The shortest of `samples` NATS PING/PONG round trips between `bus` and its server,
    in seconds (nats-py's own flush: one round trip, where Bus.flush makes two)."""
    best = float("inf")
    for _ in range(samples):
        started = time.monotonic()
        await bus.nc.flush()
        best = min(best, time.monotonic() - started)
    return best


async def test_delay_is_real_and_healing_removes_it(chaos: Chaos) -> None:
    slow_bus = await chaos.cluster.connect(sender="rtt-slow", urls=[chaos.cluster.urls[SLOW]])
    fast_bus = await chaos.cluster.connect(sender="rtt-fast", urls=[chaos.cluster.urls[0]])
    try:
        before = await _round_trip(slow_bus)
        chaos.hosts.delay(SLOW, DELAY_MS)
        try:
            slow, fast = await _round_trip(slow_bus), await _round_trip(fast_bus)
        finally:
            held = chaos.hosts.delay(SLOW, 0)
        healed = await _round_trip(slow_bus)
    finally:
        await slow_bus.close()
        await fast_bus.close()
    figures = {"before": before, "slow": slow, "fast": fast, "healed": healed, "held": held}
    print(f"round trips to node 3 (s) with {DELAY_MS} ms each way: {figures}")
    assert slow >= 2 * DELAY_MS / 1000, f"a round trip beat the delay: {figures}"
    assert held >= 10, f"the handler held too few packets: {figures}"
    assert fast < DELAY_MS / 1000, f"the other hosts' links were delayed too: {figures}"
    assert healed < DELAY_MS / 1000, f"healing left the delay: {figures}"


async def _timed_decision(chaos: Chaos, coordinator, proposal_id: str, load: Load) -> float:
    """Seconds one decision took; it must have committed."""
    started = time.monotonic()
    await chaos.decide(coordinator, proposal_id, load)
    assert load.committed[-1:] == [proposal_id], f"{proposal_id} did not commit: {load}"
    return time.monotonic() - started


async def test_slow_host_under_load_loses_nothing_and_converges(chaos: Chaos) -> None:
    """The driver's load runs on node 3, so every write, vote and acknowledgement crosses
    the slow link (a majority write or a decision crosses it at least twice each way)."""
    load = Load("slow")
    stop = asyncio.Event()
    stats: dict[str, float] = {}
    async with chaos.driver(node=SLOW) as (_, store, coordinator):
        stats["decision_before"] = await _timed_decision(chaos, coordinator, "slow-before", load)
        runner = asyncio.create_task(chaos.run_load(store, coordinator, load, stop))
        try:
            await wait_until(lambda: len(load.acked) >= 20, 20, what="writes before the delay")
            acked, failed = len(load.acked), load.failed
            chaos.hosts.delay(SLOW, DELAY_MS)
            try:
                await wait_until(lambda: len(load.acked) >= acked + 10, 30, what="slow writes")
                stats["decision_slow"] = await _timed_decision(
                    chaos, coordinator, "slow-during", load
                )
            finally:
                stats["held"] = chaos.hosts.delay(SLOW, 0)
            stats.update(acked_slow=len(load.acked) - acked, failed_slow=load.failed - failed)
            healed = len(load.acked)
            await wait_until(lambda: len(load.acked) >= healed + 20, 30, what="writes after")
        finally:
            stop.set()
            await runner
    print(f"{DELAY_MS} ms each way on host 3, under load: {stats}")
    assert stats["decision_slow"] >= 2 * DELAY_MS / 1000, f"a decision beat the delay: {stats}"
    assert stats["decision_slow"] > stats["decision_before"], stats
    assert stats["held"] >= 100, f"the handler held too few packets: {stats}"
    assert not load.hung, f"votes with a 2 s deadline still running after 30 s: {load.hung}"
    async with chaos.driver() as (bus, _, coordinator):
        await chaos.wait_converged(bus, "slow", load.acked, 30)
        await chaos.decisions_kept(coordinator, load)
        await chaos.all_alive(bus)
