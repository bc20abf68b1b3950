"""The worker pool: never more than its size at once, and every permit comes back, whether
the holder finishes, fails or is cancelled."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.vsm.delegation.pool import WorkerPool


class Boom(Exception):
    pass


@given(
    size=st.integers(1, 4),
    fates=st.lists(st.sampled_from(["done", "fail", "cancel", "cancel_waiting"]), max_size=16),
    steps=st.lists(st.integers(0, 3), min_size=16, max_size=16),
)
@settings(deadline=None, max_examples=150)
def test_permits_always_come_back(size: int, fates: list[str], steps: list[int]) -> None:
    async def scenario() -> None:
        pool = WorkerPool(size)
        inside: set[int] = set()
        seen_most = 0
        release = asyncio.Event()

        async def holder(i: int, fate: str) -> None:
            nonlocal seen_most
            async with pool.permit() as slot:
                assert slot not in inside and 0 <= slot < size  # a slot is held once
                inside.add(slot)
                seen_most = max(seen_most, len(inside))
                try:
                    for _ in range(steps[i]):
                        await asyncio.sleep(0)
                    if fate == "fail":
                        raise Boom
                    await release.wait()
                finally:
                    inside.discard(slot)

        tasks = [asyncio.create_task(holder(i, f)) for i, f in enumerate(fates)]
        for _ in range(4):
            await asyncio.sleep(0)
        assert pool.in_use <= size
        for task, fate in zip(tasks, fates, strict=True):
            if fate.startswith("cancel"):  # holding a permit or still waiting for one
                task.cancel()
        release.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result, fate in zip(results, fates, strict=True):
            if fate == "done":
                assert result is None
        assert pool.in_use == 0
        assert seen_most == pool.peak <= size
        async with asyncio.timeout(1):  # and every permit can be taken again
            async with contextlib.AsyncExitStack() as stack:
                for _ in range(size):
                    await stack.enter_async_context(pool.permit())
                assert pool.in_use == size

    async def bounded() -> None:  # a lost permit would leave waiters waiting for ever
        async with asyncio.timeout(5):
            await scenario()

    asyncio.run(bounded())


async def test_waiters_run_as_permits_come_back() -> None:
    pool = WorkerPool(2)
    order: list[str] = []
    gate = asyncio.Event()

    async def hold(name: str) -> None:
        async with pool.permit():
            order.append(name)
            await gate.wait()

    tasks = [asyncio.create_task(hold(n)) for n in "abc"]
    for _ in range(3):
        await asyncio.sleep(0)
    assert order == ["a", "b"]  # c waits for a permit
    gate.set()
    await asyncio.gather(*tasks)
    assert order == ["a", "b", "c"]
    assert pool.granted == 3 and pool.peak == 2 and pool.in_use == 0


def test_a_pool_needs_a_worker() -> None:
    with pytest.raises(ValueError):
        WorkerPool(0)
