"""An insider's flood of one-frame senders stamped 25 s in the future (issue 14, point 5):
it evicts senders from a receiver's table, yet the floor that eviction raises never
passes the receiver's clock, so a long-lived sender and a fresh one are still accepted,
however often the flood repeats; and since the table is a segmented LRU, the flood never
evicts a sender that sent two frames or more, so such a sender loses nothing while it goes
on, not even a frame in flight across the flood. On a real nats-server, with a small
sender table."""

from __future__ import annotations

import time

from amcp.protocol import Sealer
from tests.support.waiting import wait_until

MAX_SENDERS = 8
FLOOD = 3 * MAX_SENDERS


async def test_a_flood_of_future_stamped_senders_locks_no_one_out(make_bus, keyring) -> None:
    receiver = await make_bus("receiver", max_senders=MAX_SENDERS)
    sub = await receiver.subscribe("flood.x")
    await receiver.flush()  # the server has the subscription before anyone publishes
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
        fresh = await make_bus(f"fresh-{round_}")
        for k, (bus, body) in enumerate(
            (
                (regular, {"from": "regular", "n": round_ + 1}),
                (fresh, {"from": "fresh", "n": round_}),
            )
        ):
            # The floor may now be this very millisecond (the receiver's clock at the last
            # eviction, which the previous frame may have made): a frame stamped in it
            # could be the evicted sender's own.
            mark = int(time.time() * 1000)
            await wait_until(lambda m=mark: int(time.time() * 1000) > m, 1, what="the next ms")
            await bus.publish("flood.x", body)
            await delivered(1 + round_ * (FLOOD + 2) + FLOOD + k + 1)
    assert [b for b in got if "from" in b] == [
        {"from": "regular", "n": 0},
        *[
            m
            for r in range(3)
            for m in ({"from": "regular", "n": r + 1}, {"from": "fresh", "n": r})
        ],
    ]
    assert receiver.stats.total == 0, receiver.stats.as_dict()


async def test_a_long_lived_sender_loses_nothing_while_one_frame_senders_flood(
    make_bus, keyring
) -> None:
    receiver = await make_bus("receiver", max_senders=MAX_SENDERS)
    got: list[tuple[str, dict]] = []
    await receiver.subscribe("flood.y", lambda msg: got.append((msg.sender, msg.body)))
    await receiver.flush()
    insider = await make_bus("insider")
    relay = await make_bus("relay")  # carries the long-lived sender's frames
    long_lived = Sealer("long-lived", keyring)
    sent = ghosts = 0

    def publish_long_lived() -> object:
        nonlocal sent
        sent += 1
        return long_lived.seal("flood.y", {"n": sent - 1})

    def delivered(sender_prefix: str) -> int:
        return sum(1 for sender, _ in got if sender.startswith(sender_prefix))

    async def settled(n_long: int, n_ghosts: int) -> None:
        # Settled when all arrived, or as soon as anything was refused.
        await wait_until(
            lambda: (
                receiver.stats.total > 0
                or (delivered("long-lived") == n_long and delivered("ghost") == n_ghosts)
            ),
            10,
            what=f"{n_long} long-lived and {n_ghosts} ghost frames",
        )

    for _ in range(2):  # two frames: a current sender, not a one-off
        await relay.publish_frame("flood.y", publish_long_lived())
    await settled(2, 0)
    for round_ in range(10):
        # Stamped before the flood's evictions, delivered after them: a frame in flight.
        in_flight = publish_long_lived()
        for i in range(FLOOD):
            ghost = Sealer(f"ghost-{round_}-{i}", keyring, clock=lambda: time.time() + 25)
            await insider.publish_frame("flood.y", ghost.seal("flood.y", {"ghost": i}))
            ghosts += 1
            if i < FLOOD - MAX_SENDERS and i % 3 == 0:  # it keeps publishing meanwhile
                await relay.publish_frame("flood.y", publish_long_lived())
        await settled(sent - 1, ghosts)
        await relay.publish_frame("flood.y", in_flight)
        await settled(sent, ghosts)
    assert receiver.stats.total == 0, receiver.stats.as_dict()
    assert sorted(b["n"] for s, b in got if s == "long-lived") == list(range(sent))
