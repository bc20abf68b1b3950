"""Bulkhead: bounded running and waiting calls, immediate refusal past both (no sleeps)."""

from __future__ import annotations

import asyncio

import pytest

from netopt import Bulkhead, BulkheadFull, NetoptError


async def hold(bulkhead: Bulkhead, entered: asyncio.Event, release: asyncio.Event) -> None:
    async with bulkhead:
        entered.set()
        await release.wait()


async def queue(bulkhead: Bulkhead, queued: asyncio.Event, release: asyncio.Event) -> str:
    queued.set()  # the task goes on into the bulkhead before the test can resume
    async with bulkhead:
        await release.wait()
    return "done"


async def test_refuses_at_once_when_running_and_waiting_are_full() -> None:
    bulkhead = Bulkhead(max_concurrent=2, max_waiting=1, name="peer-a")
    release = asyncio.Event()
    entered = [asyncio.Event(), asyncio.Event()]
    holders = [asyncio.create_task(hold(bulkhead, e, release)) for e in entered]
    for e in entered:
        await e.wait()
    queued = asyncio.Event()
    waiter = asyncio.create_task(queue(bulkhead, queued, release))
    await queued.wait()
    assert (bulkhead.running, bulkhead.waiting) == (2, 1)

    with pytest.raises(BulkheadFull, match="2 calls running and 1 waiting") as refused:
        async with bulkhead:
            pytest.fail("a full bulkhead admitted a call")
    assert isinstance(refused.value, NetoptError)
    assert (refused.value.max_concurrent, refused.value.max_waiting) == (2, 1)
    assert "peer-a" in str(refused.value)

    release.set()
    await asyncio.gather(*holders)
    assert await waiter == "done"
    assert (bulkhead.running, bulkhead.waiting) == (0, 0)


async def test_with_no_waiting_room_it_refuses_as_soon_as_all_slots_are_busy() -> None:
    bulkhead = Bulkhead(max_concurrent=1, max_waiting=0)
    entered, release = asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(hold(bulkhead, entered, release))
    await entered.wait()
    with pytest.raises(BulkheadFull):
        async with bulkhead:
            pass
    release.set()
    await holder
    async with bulkhead:
        assert bulkhead.running == 1


async def test_a_cancelled_waiter_gives_its_place_back() -> None:
    bulkhead = Bulkhead(max_concurrent=1, max_waiting=1)
    entered, release = asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(hold(bulkhead, entered, release))
    await entered.wait()
    queued = asyncio.Event()
    waiter = asyncio.create_task(queue(bulkhead, queued, release))
    await queued.wait()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert bulkhead.waiting == 0
    second = asyncio.Event()
    replacement = asyncio.create_task(queue(bulkhead, second, release))
    await second.wait()
    assert bulkhead.waiting == 1
    release.set()
    await holder
    assert await replacement == "done"
    assert (bulkhead.running, bulkhead.waiting) == (0, 0)


def test_invalid_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        Bulkhead(max_concurrent=0, max_waiting=1)
    with pytest.raises(ValueError):
        Bulkhead(max_concurrent=1, max_waiting=-1)
