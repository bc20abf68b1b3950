"""The worker pool: at most `size` workers at once. A permit is a numbered slot, taken
with `async with pool.permit() as slot:` and given back when the block ends however it
ends (a worker's failure, its kill, the caller's cancellation), so a subtask that went
wrong never shrinks the pool. No I/O: asyncio's semaphore plus the accounting a report
and the tests read (in use now, the peak, permits granted)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

__all__ = ["WorkerPool"]


class WorkerPool:
    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"the pool needs at least one worker, not {size}")
        self.size = size
        self.peak = 0
        self.granted = 0
        self._free = list(range(size))  # slots, lowest first
        self._sem = asyncio.Semaphore(size)

    @property
    def in_use(self) -> int:
        return self.size - len(self._free)

    @asynccontextmanager
    async def permit(self) -> AsyncIterator[int]:
        await self._sem.acquire()
        # no await between acquire and try: a cancellation cannot land in between
        self._free.sort()
        slot = self._free.pop(0)
        self.granted += 1
        self.peak = max(self.peak, self.in_use)
        try:
            yield slot
        finally:
            self._free.append(slot)
            self._sem.release()
