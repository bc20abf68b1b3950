"""A sans-I/O batch accumulator for one subject: it decides when a batch is complete.

It owns no timer and no socket. The caller adds items with the current time, sends the
batches it gets back, arms a timer for `next_deadline()` and calls `due(now)` when it fires
(or whenever its sender task gets to run), and calls `drain()` on close. Items that must not
wait (high-attention messages) bypass the accumulator entirely: that is the caller's job.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from netopt.batch_policy import BatchPolicy

__all__ = ["Batch", "BatchAccumulator", "FlushReason"]

T = TypeVar("T")


class FlushReason(StrEnum):
    """Why a batch was closed (a metrics label)."""

    COUNT = "count"
    BYTES = "bytes"
    DEADLINE = "deadline"
    POLICY = "policy"
    DRAIN = "drain"
    ALONE = "alone"
    """Not a batch: a message the caller sent at once in a frame of its own, where
    batching would gather nothing (counted beside the batches)."""


@dataclass(frozen=True, slots=True)
class Batch(Generic[T]):
    """Items to send as one frame, in the order they were added."""

    items: tuple[T, ...]
    nbytes: int
    opened_at: float
    """When the first item was added: the batch's oldest item has waited since then."""
    reason: FlushReason


class BatchAccumulator(Generic[T]):
    """Groups opaque items into batches under a `BatchPolicy`.

    A batch closes when it holds `max_messages` items or `max_bytes` bytes, or at its
    deadline, `linger_seconds` after its first item. With linger 0 (natural batching) the
    deadline is the moment the first item arrives, so `due(now)` hands over whatever queued
    up while the caller was busy, and no item ever waits for company. An item that would push
    a batch past `max_bytes` closes that batch first; an item larger than `max_bytes` on its
    own travels alone (the frame-size check is the caller's).
    """

    def __init__(self, policy: BatchPolicy) -> None:
        self._policy = policy
        self._items: list[T] = []
        self._nbytes = 0
        self._opened_at = 0.0

    @property
    def policy(self) -> BatchPolicy:
        return self._policy

    def set_policy(self, policy: BatchPolicy) -> list[Batch[T]]:
        """Switch policy; what is queued under the old one is closed and returned, unless
        the policy is unchanged. Closing early never delays anything."""
        if policy == self._policy:
            return []
        self._policy = policy
        return [self._close(FlushReason.POLICY)] if self._items else []

    def add(self, item: T, nbytes: int, now: float) -> list[Batch[T]]:
        """Queue `item` of `nbytes` bytes; return the batches that are complete now."""
        out: list[Batch[T]] = []
        policy = self._policy
        if self._items and self._nbytes + nbytes > policy.max_bytes:
            out.append(self._close(FlushReason.BYTES))
        if not self._items:
            self._opened_at = now
        self._items.append(item)
        self._nbytes += nbytes
        if len(self._items) >= policy.max_messages:
            out.append(self._close(FlushReason.COUNT))
        elif self._nbytes >= policy.max_bytes:
            out.append(self._close(FlushReason.BYTES))
        return out

    def due(self, now: float) -> list[Batch[T]]:
        """The open batch if its deadline has come, else nothing."""
        if self._items and now >= self._opened_at + self._policy.linger_seconds:
            return [self._close(FlushReason.DEADLINE)]
        return []

    def next_deadline(self) -> float | None:
        """When the open batch must be sent, or None if nothing is queued."""
        return self._opened_at + self._policy.linger_seconds if self._items else None

    def drain(self) -> list[Batch[T]]:
        """Everything still queued, as a batch (on close: nothing is left unsent)."""
        return [self._close(FlushReason.DRAIN)] if self._items else []

    def __len__(self) -> int:
        """The number of items queued."""
        return len(self._items)

    def _close(self, reason: FlushReason) -> Batch[T]:
        batch = Batch(tuple(self._items), self._nbytes, self._opened_at, reason)
        self._items = []
        self._nbytes = 0
        return batch
