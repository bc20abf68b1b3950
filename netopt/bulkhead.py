"""An asyncio bulkhead: at most `max_concurrent` calls run, at most `max_waiting` wait.

A slow destination then holds a bounded share of tasks and memory; past both bounds a call
is refused at once with BulkheadFull, rather than piling up behind the others.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from netopt.errors import BulkheadFull

__all__ = ["Bulkhead"]


class Bulkhead:
    """Use as `async with bulkhead: ...` around each call."""

    def __init__(self, max_concurrent: int, max_waiting: int, name: str = "bulkhead") -> None:
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be >= 1, got {max_concurrent}")
        if max_waiting < 0:
            raise ValueError(f"max_waiting must be >= 0, got {max_waiting}")
        self.name = name
        self.max_concurrent = max_concurrent
        self.max_waiting = max_waiting
        self._slots = asyncio.Semaphore(max_concurrent)
        self._running = 0
        self._waiting = 0

    @property
    def running(self) -> int:
        """Calls holding a slot."""
        return self._running

    @property
    def waiting(self) -> int:
        """Calls queued for a slot."""
        return self._waiting

    async def __aenter__(self) -> None:
        if self._slots.locked():
            if self._waiting >= self.max_waiting:
                raise BulkheadFull(self.name, self.max_concurrent, self.max_waiting)
            self._waiting += 1
            try:
                await self._slots.acquire()
            finally:
                self._waiting -= 1
        else:
            await self._slots.acquire()  # a free slot: returns without suspending
        self._running += 1

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._running -= 1
        self._slots.release()
