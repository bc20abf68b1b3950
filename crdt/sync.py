"""Anti-entropy, the pure part: which keys two replicas hold differently, cheaply.

Keys fall into `BUCKETS` buckets by CRC32 of the key. A bucket's hash covers the sorted
(key, digest) pairs in it, so two replicas compare 64 bucket hashes (and, first, one
hash of those) instead of every key digest. For the buckets that differ, the puller
sends its key digests; the peer answers with the full states of the keys it holds
differently (bounded by a byte budget, `more` when it stopped early) and names the keys
it wants back. Merging is a join, so exchanging full states of differing keys, in both
directions, makes the two replicas equal.
"""

from __future__ import annotations

import bisect
import hashlib
import zlib
from collections.abc import Iterable
from typing import Any, NamedTuple

from crdt.state import ReplicaState
from crdt.wire import pack

__all__ = [
    "BUCKETS",
    "DigestIndex",
    "PullAnswer",
    "answer_pull",
    "bucket_of",
    "differing",
    "group_buckets",
]

BUCKETS = 64
HASH_BYTES = 8
_EMPTY = bytes(HASH_BYTES)


def bucket_of(key: str) -> int:
    """The bucket of `key`, the same on every replica."""
    return zlib.crc32(key.encode()) % BUCKETS


class DigestIndex:
    """Bucket hashes of one ReplicaState, recomputed only for buckets touched since.

    Whoever changes the state calls `touch(key)`; the digests themselves come from the
    state's own per-key cache.
    """

    def __init__(self, state: ReplicaState) -> None:
        self._state = state
        self._sorted: list[list[str]] = [[] for _ in range(BUCKETS)]  # each bucket's keys
        self._packed: dict[str, bytes] = {}  # every key held -> its msgpack form
        self._entries: dict[str, bytes] = {}  # key -> msgpack(key) + digest, until it changes
        self._hashes = [_EMPTY] * BUCKETS
        self._dirty: set[int] = set()
        self._top: bytes | None = None
        keys = state.keys()
        for key in keys:
            self.touch(key)

    def touch(self, key: str) -> None:
        """`key` changed (or appeared): its bucket hash must be recomputed."""
        bucket = bucket_of(key)
        if key not in self._packed:
            bisect.insort(self._sorted[bucket], key)
            self._packed[key] = pack(key)
        self._entries.pop(key, None)
        self._dirty.add(bucket)
        self._top = None

    def discard(self, key: str) -> None:
        """`key` is gone (dropped by retention): its bucket hash must be recomputed."""
        bucket = bucket_of(key)
        if self._packed.pop(key, None) is not None:
            order = self._sorted[bucket]
            del order[bisect.bisect_left(order, key)]
        self._entries.pop(key, None)
        self._dirty.add(bucket)
        self._top = None

    def buckets(self) -> list[bytes]:
        """The BUCKETS hashes (8 zero bytes for an empty bucket). A busy replica's buckets
        are all dirty each round, so this walks every key: each bucket's keys are kept in
        order with their msgpack form and digest, so a bucket is one join and one hash
        (the digests of the keys changed since are computed again)."""
        digest_of = self._state.digest_of
        packed, entries = self._packed, self._entries
        for bucket in self._dirty:
            order = self._sorted[bucket]
            if not order:  # emptied by drops: as if it never held a key, so equal states agree
                self._hashes[bucket] = _EMPTY
                continue
            parts = []
            for key in order:
                entry = entries.get(key)
                if entry is None:
                    entry = entries[key] = packed[key] + digest_of(key)
                parts.append(entry)
            self._hashes[bucket] = hashlib.blake2b(b"".join(parts), digest_size=HASH_BYTES).digest()
        self._dirty.clear()
        return list(self._hashes)

    def top(self) -> bytes:
        """One hash over all bucket hashes: equal tops mean (almost surely) equal states."""
        if self._top is None:
            self._top = hashlib.blake2b(b"".join(self.buckets()), digest_size=HASH_BYTES).digest()
        return self._top

    def count(self, bucket: int) -> int:
        return len(self._sorted[bucket])

    def keys_in(self, buckets: Iterable[int]) -> list[str]:
        """The keys of those buckets, sorted."""
        return sorted(key for bucket in set(buckets) for key in self._sorted[bucket])

    def digests(self, keys: Iterable[str]) -> dict[str, bytes]:
        """{key: digest} of those keys this replica holds."""
        state = self._state
        return {key: state.digest_of(key) for key in keys if key in state}


def differing(mine: list[bytes], theirs: list[bytes]) -> list[int]:
    """The buckets whose hashes differ."""
    return [bucket for bucket, (a, b) in enumerate(zip(mine, theirs, strict=True)) if a != b]


def group_buckets(index: DigestIndex, buckets: Iterable[int], max_keys: int) -> list[list[int]]:
    """Split buckets into groups of at most `max_keys` local keys (a bucket never splits),
    so each pull request stays well under the frame limit."""
    groups: list[list[int]] = []
    size = 0
    for bucket in buckets:
        count = index.count(bucket)
        if not groups or (size + count > max_keys and groups[-1]):
            groups.append([])
            size = 0
        groups[-1].append(bucket)
        size += count
    return groups


class PullAnswer(NamedTuple):
    """What a peer answers to a pull: full states it holds differently (`[key, tag, wire]`
    records), keys it wants back, and whether it stopped early at the byte budget."""

    records: list[list[Any]]
    want: list[str]
    more: bool


def answer_pull(
    state: ReplicaState, scope: Iterable[str], theirs: dict[str, bytes], budget: int
) -> PullAnswer:
    """Answer a pull over `scope` (keys) given the puller's digests `theirs`.

    Records go in key order until `budget` bytes (at least one record is always sent, so
    paging makes progress); the keys wanted are those the puller holds and this replica
    lacks or holds differently.
    """
    records: list[list[Any]] = []
    size = 0
    more = False
    for key in scope:
        if key not in state or state.digest_of(key) == theirs.get(key):
            continue
        record = state.full_delta(key).to_wire()
        cost = len(pack(record))
        if records and size + cost > budget:
            more = True
            break
        records.append(record)
        size += cost
    want = [
        key for key, digest in theirs.items() if key not in state or state.digest_of(key) != digest
    ]
    return PullAnswer(records, sorted(want), more)
