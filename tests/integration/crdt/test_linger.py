"""A write's `linger` on a real nats-server: writes nobody waits on share one delta frame
and reach the peers no later than their linger; a write without it (or one that waits for
acknowledgements or the disk) sends at once, taking what lingers with it; flush and close
send what lingers."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from amcp import Bus
from crdt import ContextStore, CrdtValueError
from tests.support.waiting import wait_until

MakeBus = Callable[..., Awaitable[Bus]]
Open = Callable[..., Awaitable[ContextStore]]
LONG = 50.0  # a linger no test waits out: what arrives came by another way
QUIET = 600.0  # no anti-entropy round during the test: deltas are the only way across


@pytest.fixture
async def open_store(make_bus: MakeBus, tmp_path: Path) -> AsyncIterator[Open]:
    stores: list[ContextStore] = []

    async def factory(name: str, durable: bool = False, **options: Any) -> ContextStore:
        options.setdefault("gossip_interval", QUIET)
        store = await ContextStore.open(
            await make_bus(f"bus-{name}"),
            replica_id=name if durable else None,
            data_dir=tmp_path / name if durable else None,
            **options,
        )
        stores.append(store)
        return store

    yield factory
    for store in stores:
        await store.close()


def holds(store: ContextStore, *keys: str) -> Callable[[], bool]:
    return lambda: all(store.local(k) is not None for k in keys)


async def test_lingering_writes_share_one_frame_sent_when_the_linger_ends(
    open_store: Open,
) -> None:
    a, b = await open_store("a"), await open_store("b")
    frames = b.stats.get("batches_in", 0)
    started = time.monotonic()
    for i in range(5):
        await a.set(f"k{i}", i, linger=0.3)
    await wait_until(holds(b, *(f"k{i}" for i in range(5))), 5, what="the lingering writes at b")
    assert time.monotonic() - started >= 0.25  # not sent at once (the timer's own slack aside)
    assert b.stats["batches_in"] == frames + 1
    assert [b.local(f"k{i}") for i in range(5)] == list(range(5))


async def test_a_write_without_linger_sends_what_lingers_at_once(open_store: Open) -> None:
    a, b = await open_store("a"), await open_store("b")
    frames = b.stats.get("batches_in", 0)
    await a.set("slow", 1, linger=LONG)
    await a.incr("now")  # nobody lingers on this one
    await wait_until(holds(b, "slow", "now"), 5, what="both writes at b")
    assert b.stats["batches_in"] == frames + 1


async def test_flush_and_close_send_what_lingers(open_store: Open) -> None:
    a, b = await open_store("a"), await open_store("b")
    await a.set("x", 1, linger=LONG)
    await a.flush()
    await wait_until(holds(b, "x"), 5, what="x at b after flush")
    await a.set("y", 2, linger=LONG)
    await a.close()
    await wait_until(holds(b, "y"), 5, what="y at b after close")


async def test_a_write_someone_waits_on_never_lingers(open_store: Open) -> None:
    members = [await open_store(f"m{i}", durable=True) for i in range(3)]
    reader = await open_store("reader")
    await wait_until(lambda: len(reader.members()) == 3, 5, what="the members at the reader")
    # a durable replica's writer waits for its disk, a majority write for the acks: neither
    # may linger, and the peers hear of them at once (LONG would time the test out)
    local = await members[0].set("on-disk", 1, write="local", timeout=5, linger=LONG)
    majority = await members[1].set("acked", 2, write="majority", timeout=5, linger=LONG)
    assert local.needed == 1 and majority.acks >= majority.needed == 2
    await wait_until(holds(reader, "on-disk", "acked"), 5, what="both writes at the reader")


@pytest.mark.parametrize("linger", [-1.0, float("nan"), float("inf"), 61.0, "5", True, None])
async def test_a_bad_linger_is_refused_and_nothing_is_written(
    open_store: Open, linger: Any
) -> None:
    a = await open_store("a")
    sent = a.stats.get("deltas_out", 0)
    with pytest.raises(CrdtValueError, match="linger must be"):
        await a.set("k", 1, linger=linger)
    await a.flush()
    assert a.local("k") is None and a.stats.get("deltas_out", 0) == sent
