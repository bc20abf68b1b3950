"""Bad input to a replica: malformed messages and deltas, a delta of the wrong type for its
key, a timestamp from the far future, forged and replayed frames. Each is refused and
counted, the replica keeps its state, and a durable replica never acknowledges it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from amcp import Bus, Keyring, Message, Reason
from crdt import ContextStore
from crdt.messages import Ack, Deltas, parse
from tests.support.waiting import wait_until

MakeBus = Callable[..., Awaitable[Bus]]
FUTURE_MS = 4_000_000_000_000  # year 2096


def delta(*records: Any, wid: int = 0) -> dict[str, Any]:
    return Deltas("ghost", 1, list(records), wid).to_wire()


async def test_malformed_wrong_type_and_future_deltas_are_refused(
    make_bus: MakeBus, tmp_path: Path
) -> None:
    store = await ContextStore.open(await make_bus("victim"), data_dir=tmp_path / "v")
    try:
        await store.incr("n", 5)
        await store.set("r", "kept")
        await store.add("s", "x")
        before = await store.dump()
        raw = await make_bus("raw")
        subject = raw.subjects.area("ctx", "delta")
        acks: list[Ack] = []

        def on_ack(msg: Message) -> None:
            m = parse(msg.body)
            assert isinstance(m, Ack)
            acks.append(m)

        await raw.subscribe(raw.subjects.area("ctx", "rep", "ghost"), on_ack)
        await raw.flush()
        bodies = [
            "not a map",  # malformed message: 1
            {"op": "delta", "r": "ghost"},  # 2
            {"op": "explode", "r": "ghost"},  # 3
            delta(["n", "gcounter", {"ghost": -4}]),  # malformed record: 4
            delta(["n", "no-such-type", {}]),  # 5
            delta("not a record"),  # 6
            delta(["n", "orset", {"dc": [], "e": [], "vv": {}}]),  # wrong type for n: type 1
            delta(["s", "gcounter", {"ghost": 1}]),  # type 2
            delta(["r", "lwwreg", [[FUTURE_MS, 0, "ghost"], "hijack"]]),  # clock 1
            # a batch that asks for an ack, with one bad and one good record
            delta(["n", "lwwmap", {}], ["ok", "gcounter", {"ghost": 2}], wid=7),
        ]
        for body in bodies:
            await raw.publish(subject, body, kind="ctx")
        await wait_until(lambda: store.local("ok") == 2, 5, what="the good record")
        await wait_until(lambda: acks, 5, what="the ack of the mixed batch")
        stats = store.stats
        assert stats["rejected_malformed"] == 6
        assert stats["rejected_type"] == 3
        assert stats["rejected_clock"] == 1
        assert acks == [Ack(store.replica_id, 1, 7, ["n"])]  # n refused: not acknowledged
        after = await store.dump()
        assert after.pop("ok") == 2
        assert after == before
    finally:
        await store.close()


async def test_forged_and_replayed_frames_are_refused_by_the_bus_and_counted(
    make_bus: MakeBus,
) -> None:
    bus = await make_bus("victim")
    store = await ContextStore.open(bus)
    await store.set("r", "kept")
    raw = await make_bus("raw")
    subject = raw.subjects.area("ctx", "delta")
    good = raw.sealer.seal(subject, delta(["g", "gcounter", {"ghost": 1}]), "ctx")
    flipped = bytearray(raw.sealer.seal(subject, delta(["r", "lwwreg", None]), "ctx"))
    flipped[-1] ^= 0x01  # the MAC no longer matches
    stranger = Bus(raw.nc, Keyring.generate(), "ghost").sealer.seal(
        subject, delta(["r", "lwwreg", [[1, 0, "ghost"], "forged"]]), "ctx"
    )
    before = store.stats["bus_rejected"]
    for frame in (good, bytes(flipped), stranger, good):  # the second `good` is a replay
        await raw.publish_frame(subject, frame)
    await raw.publish(subject, delta(["last", "gcounter", {"ghost": 1}]), kind="ctx")
    await wait_until(lambda: store.local("last") == 1, 5, what="the good frame after them")
    counts = bus.rejections
    assert counts[Reason.BAD_SIGNATURE] == 1
    assert counts[Reason.UNKNOWN_KEY] == 1
    assert counts[Reason.REPLAY] == 1
    assert store.stats["bus_rejected"] == before + 3
    assert store.local("r") == "kept" and store.local("g") == 1
    assert store.stats["applied"] == 2  # the good frame once, and the last one
    await store.close()
