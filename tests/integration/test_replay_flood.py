"""An insider's flood of one-frame senders stamped 25 s in the future (issue 14, point 5):
it evicts every sender from a receiver's table, yet the floor that eviction raises never
passes the receiver's clock, so a long-lived sender and a fresh one are still accepted,
however often the flood repeats. On a real nats-server, with a small sender table."""

from __future__ import annotations

import time

from amcp.protocol import Sealer
from tests.waiting import wait_until

MAX_SENDERS = 8
FLOOD = 3 * MAX_SENDERS


async def test_a_flood_of_future_stamped_senders_locks_no_one_out(make_bus, keyring) -> None:
    receiver = await make_bus("receiver", max_senders=MAX_SENDERS)
    sub = await receiver.subscribe("flood.x")
    insider = await make_bus("insider")
    regular = await make_bus("regular")
    got: list[object] = []

    async def delivered(n: int) -> None:
        while len(got) < n:
            got.append((await sub.next(5)).body)

    await regular.publish("flood.x", {"from": "regular", "n": 0})
    await delivered(1)
    for round_ in range(3):  # the flood repeats: no one is locked out after any of them
        for i in range(FLOOD):
            sender = Sealer(f"ghost-{round_}-{i}", keyring, clock=lambda: time.time() + 25)
            await insider.publish_frame("flood.x", sender.seal("flood.x", {"ghost": i}))
        await delivered(1 + round_ * (FLOOD + 2) + FLOOD)  # the flood went through
        # The floor may now be this very millisecond (the receiver's clock at the last
        # eviction): a frame stamped in it could be the evicted sender's own.
        mark = int(time.time() * 1000)
        await wait_until(lambda m=mark: int(time.time() * 1000) > m, 1, what="the next ms")
        await regular.publish("flood.x", {"from": "regular", "n": round_ + 1})
        fresh = await make_bus(f"fresh-{round_}")
        await fresh.publish("flood.x", {"from": "fresh", "n": round_})
        await delivered(1 + (round_ + 1) * (FLOOD + 2))
    assert [b for b in got if "from" in b] == [
        {"from": "regular", "n": 0},
        *[
            m
            for r in range(3)
            for m in ({"from": "regular", "n": r + 1}, {"from": "fresh", "n": r})
        ],
    ]
    assert receiver.stats.total == 0, receiver.stats.as_dict()
