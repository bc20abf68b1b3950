"""Retention of expiring registers (pure): which keys a replica drops, and when.

An LWW register written with a time to live expires at its winning write's wall time plus
the ttl. Every replica computes the same expiry from the same write, so each drops the key
on its own, without a tombstone: a replica that has not dropped it yet (a slower clock,
a partition) may send it back, and the receiver refuses it as expired again.

A count limit per key prefix bounds how many expiring registers under the prefix a
replica keeps (for a burst of writes the time limit alone would let through). Past it,
the registers that expire first go (ties by key): a deterministic function of the set
held, so replicas that hold the same keys keep the same ones, and a key evicted here
that comes back from a replica that kept it is the first to go again.

`Retention` only tracks (expiry, key) pairs; ReplicaState owns the keys, tells it of each
change (`track`, `untrack`) and does the dropping. Heap entries are checked lazily against
the key's current expiry, so a rewrite needs no removal from a heap.
"""

from __future__ import annotations

import heapq

from crdt.errors import CrdtValueError
from crdt.wire import as_name

__all__ = ["Retention"]


class _Group:
    """The expiring keys under one limited prefix: a heap by (expiry, key) and the set."""

    __slots__ = ("heap", "keys", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.heap: list[tuple[int, str]] = []
        self.keys: set[str] = set()


class Retention:
    """Expiry times and per-prefix count limits of one replica's expiring registers."""

    __slots__ = ("_due", "_expiry", "_groups")

    def __init__(self) -> None:
        self._expiry: dict[str, int] = {}  # key -> when its winning write expires
        self._due: list[tuple[int, str]] = []  # heap over _expiry, lazily valid
        self._groups: dict[str, _Group] = {}

    def __len__(self) -> int:
        return len(self._expiry)

    def expiry(self, key: str) -> int | None:
        return self._expiry.get(key)

    def limits(self) -> dict[str, int]:
        """{prefix: most expiring keys kept under it}."""
        return {prefix: group.limit for prefix, group in self._groups.items()}

    def limit(self, prefix: str, max_keys: int) -> list[str]:
        """Keep at most `max_keys` expiring registers under `prefix` (replacing an earlier
        limit on it). Returns the keys to drop now. Limited prefixes must not overlap, so
        each key counts against one limit."""
        as_name(prefix, "prefix", CrdtValueError)
        if type(max_keys) is not int or max_keys < 1:
            raise CrdtValueError("max_keys must be a positive integer")
        for other in self._groups:
            if other != prefix and (other.startswith(prefix) or prefix.startswith(other)):
                raise CrdtValueError(f"limited prefixes {prefix!r} and {other!r} overlap")
        group = self._groups[prefix] = _Group(max_keys)
        group.heap = [(e, k) for k, e in self._expiry.items() if k.startswith(prefix)]
        heapq.heapify(group.heap)
        group.keys = {key for _, key in group.heap}
        return self._evict(group)

    def track(self, key: str, expires_ms: int | None) -> list[str]:
        """`key`'s winning write now expires at `expires_ms` (None: it does not expire).
        Returns the keys to drop to stay within the key's prefix limit (maybe `key`)."""
        if expires_ms is None:
            self.untrack(key)
            return []
        if self._expiry.get(key) == expires_ms:
            return []
        self._expiry[key] = expires_ms
        heapq.heappush(self._due, (expires_ms, key))
        if len(self._due) > 2 * len(self._expiry) + 64:  # drop stale entries now and then
            self._due = [e for e in self._due if self._valid(e)]
            heapq.heapify(self._due)
        group = self._group_of(key)
        if group is None:
            return []
        group.keys.add(key)
        heapq.heappush(group.heap, (expires_ms, key))
        if len(group.heap) > 2 * len(group.keys) + 64:
            group.heap = [e for e in group.heap if self._valid(e)]
            heapq.heapify(group.heap)
        return self._evict(group)

    def untrack(self, key: str) -> None:
        """`key` is gone or no longer expires (its heap entries become stale)."""
        if self._expiry.pop(key, None) is not None:
            group = self._group_of(key)
            if group is not None:
                group.keys.discard(key)

    def due(self, now_ms: int) -> list[str]:
        """The keys whose expiry is at or before `now_ms`, untracked as they are returned."""
        found: list[str] = []
        while self._due and self._due[0][0] <= now_ms:
            entry = heapq.heappop(self._due)
            if self._valid(entry):
                self.untrack(entry[1])
                found.append(entry[1])
        return found

    def _valid(self, entry: tuple[int, str]) -> bool:
        return self._expiry.get(entry[1]) == entry[0]

    def _group_of(self, key: str) -> _Group | None:
        for prefix, group in self._groups.items():
            if key.startswith(prefix):
                return group
        return None

    def _evict(self, group: _Group) -> list[str]:
        evicted: list[str] = []
        while len(group.keys) > group.limit and group.heap:
            entry = heapq.heappop(group.heap)
            if entry[1] in group.keys and self._valid(entry):
                self.untrack(entry[1])
                evicted.append(entry[1])
        return evicted
