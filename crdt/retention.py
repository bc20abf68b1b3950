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


NEVER = 1 << 62
"""The rank of a register that does not expire, under a limit: after every expiry."""


class _Group:
    """The registers under one limited prefix: their ranks (expiry, or NEVER) and a heap
    over them, lazily valid."""

    __slots__ = ("heap", "limit", "rank")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.heap: list[tuple[int, str]] = []
        self.rank: dict[str, int] = {}


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
        """Keep at most `max_keys` registers under `prefix` (replacing an earlier limit on
        it); the ones tracked so far count, the others as they are tracked. Returns the keys
        to drop now. Limited prefixes must not overlap, so each key counts against one."""
        as_name(prefix, "prefix", CrdtValueError)
        if type(max_keys) is not int or max_keys < 1:
            raise CrdtValueError("max_keys must be a positive integer")
        for other in self._groups:
            if other != prefix and (other.startswith(prefix) or prefix.startswith(other)):
                raise CrdtValueError(f"limited prefixes {prefix!r} and {other!r} overlap")
        group = self._groups[prefix] = _Group(max_keys)
        group.rank = {k: e for k, e in self._expiry.items() if k.startswith(prefix)}
        group.heap = [(e, k) for k, e in group.rank.items()]
        heapq.heapify(group.heap)
        return self._evict(group)

    def track(self, key: str, expires_ms: int | None) -> list[str]:
        """`key`'s register now expires at `expires_ms` (None: it does not expire).
        Returns the keys to drop to stay within the key's prefix limit (maybe `key`).

        A register that does not expire still counts against its prefix's limit, ranked
        after every expiring one: were it not counted, its rewrite without a ttl would
        make room for a key dropped for the limit, and that key could come back."""
        if expires_ms is None:
            self._expiry.pop(key, None)
        elif self._expiry.get(key) != expires_ms:
            self._expiry[key] = expires_ms
            heapq.heappush(self._due, (expires_ms, key))
            if len(self._due) > 2 * len(self._expiry) + 64:  # drop stale entries now and then
                self._due = [e for e in self._due if self._valid(e)]
                heapq.heapify(self._due)
        group = self._group_of(key)
        rank = NEVER if expires_ms is None else expires_ms
        if group is None or group.rank.get(key) == rank:
            return []
        group.rank[key] = rank
        heapq.heappush(group.heap, (rank, key))
        if len(group.heap) > 2 * len(group.rank) + 64:
            group.heap = [e for e in group.heap if group.rank.get(e[1]) == e[0]]
            heapq.heapify(group.heap)
        return self._evict(group)

    def untrack(self, key: str) -> None:
        """`key` is gone (its heap entries become stale)."""
        self._expiry.pop(key, None)
        group = self._group_of(key)
        if group is not None:
            group.rank.pop(key, None)

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
        while len(group.rank) > group.limit and group.heap:
            entry = heapq.heappop(group.heap)
            if group.rank.get(entry[1]) == entry[0]:
                self.untrack(entry[1])
                evicted.append(entry[1])
        return evicted
