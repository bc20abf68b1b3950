"""ReplicaState: the named CRDTs of one replica, with no I/O (sans-I/O, as h11 is).

Local mutations return a `Delta` for the replicator to send; `apply` checks and merges a
remote one; `digest` hashes each key's canonical wire form for anti-entropy; `snapshot`
and `restore` give a plain value for persistence and for bootstrapping a new replica.
A key's type is fixed by its first use: a delta of another type is refused.

Registers written with a ttl expire (crdt.retention): an expired one reads as absent, is
refused when it arrives, and is dropped by `expire()`; a per-prefix count limit drops
the ones that expire first. Dropped keys are reported once by `drain_dropped()`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from crdt.base import Crdt
from crdt.errors import CrdtDecodeError, CrdtTypeMismatch, CrdtValueError
from crdt.gcounter import GCounter
from crdt.hlc import HybridClock
from crdt.lwwmap import LWWMap
from crdt.lwwregister import LWWRegister
from crdt.orset import ORSet
from crdt.pncounter import PNCounter
from crdt.retention import Retention
from crdt.wire import as_array, as_map, as_name, pack

__all__ = ["TYPES", "Delta", "ReplicaState"]

TYPES: dict[str, type[Crdt]] = {
    cls.type_tag: cls for cls in (GCounter, PNCounter, LWWRegister, LWWMap, ORSet)
}
DIGEST_BYTES = 8
_ABSENT = object()
C = TypeVar("C", bound=Crdt)


def _differ(before: Any, after: Any) -> bool:
    return before is _ABSENT or pack(before) != pack(after)


def _mismatch(key: str, held: str, wanted: str) -> CrdtTypeMismatch:
    return CrdtTypeMismatch(f"key {key!r} holds a {held}, not a {wanted}")


def _type_for(tag: Any) -> type[Crdt]:
    cls = TYPES.get(tag) if type(tag) is str else None
    if cls is None:
        raise CrdtDecodeError(f"unknown crdt type {tag!r}")
    return cls


@dataclass(frozen=True, slots=True)
class Delta:
    """A change to one key: what the replicator sends. `wire` is the type's wire form.

    `changed` tells local watchers whether the mutation changed the visible value; it is
    not part of the wire form.
    """

    key: str
    type_tag: str
    wire: Any
    changed: bool = field(default=True, compare=False)

    def to_wire(self) -> list[Any]:
        """`[key, type_tag, wire]`."""
        return [self.key, self.type_tag, self.wire]

    @classmethod
    def from_wire(cls, wire: Any) -> Delta:
        """Decode `[key, type_tag, wire]`; the inner wire is checked by `apply`."""
        key, tag, inner = as_array(wire, "delta", 3)
        return cls(as_name(key, "delta key"), _type_for(tag).type_tag, inner)


class ReplicaState:
    """The CRDTs of one replica, by key. Pure: the caller moves deltas and bytes."""

    __slots__ = ("_crdts", "_digests", "_dropped", "_retention", "clock")

    def __init__(self, replica_id: str, clock: HybridClock | None = None) -> None:
        if clock is None:
            clock = HybridClock(replica_id)
        elif clock.replica_id != replica_id:
            raise CrdtValueError("the clock belongs to another replica")
        self.clock = clock
        self._crdts: dict[str, Crdt] = {}
        self._digests: dict[str, bytes] = {}  # cache, dropped per key on every change
        self._retention = Retention()
        self._dropped: list[str] = []  # keys expired or evicted, until drained

    @property
    def replica_id(self) -> str:
        return self.clock.replica_id

    def keys(self) -> list[str]:
        """The keys, sorted."""
        return sorted(self._crdts)

    def __contains__(self, key: object) -> bool:
        return key in self._crdts

    def __len__(self) -> int:
        return len(self._crdts)

    def type_of(self, key: str) -> str | None:
        """The type tag of `key`, or None if the key is unknown."""
        crdt = self._crdts.get(key)
        return crdt.type_tag if crdt is not None else None

    def get(self, key: str, default: Any = None) -> Any:
        """The plain value of `key` (a copy), or `default` if the key is unknown or an
        expired register not dropped yet."""
        crdt = self._crdts.get(key)
        if crdt is None:
            return default
        expiry = self._retention.expiry(key) if type(crdt) is LWWRegister else None
        if expiry is not None and expiry <= self.clock.wall():
            return default
        return crdt.value()

    # -- retention ------------------------------------------------------------------------

    def limit(self, prefix: str, max_keys: int) -> list[str]:
        """Keep at most `max_keys` registers under `prefix`: past it, the ones that expire
        first are dropped (ties by key; those that never expire go last). Returns the keys
        dropped now."""
        before = len(self._dropped)
        self._drop_all(self._retention.limit(prefix, max_keys))
        for key in [k for k in self._crdts if k.startswith(prefix)]:
            if key in self._crdts:  # the registers that do not expire count too
                self._settle(key)
        return self._dropped[before:]

    def limits(self) -> dict[str, int]:
        return self._retention.limits()

    def expire(self, now_ms: int | None = None) -> list[str]:
        """Drop the registers expired at `now_ms` (default: the clock's wall time)."""
        return self._drop_all(self._retention.due(self.clock.wall() if now_ms is None else now_ms))

    def drain_dropped(self) -> list[str]:
        """The keys dropped (expired or past a limit) since the last call, in order."""
        dropped, self._dropped = self._dropped, []
        return dropped

    def _settle(self, key: str) -> bool:
        """Apply retention to `key` after a change; False if it was dropped."""
        crdt = self._crdts[key]
        if type(crdt) is not LWWRegister:
            return True
        expiry = crdt.expires_ms
        if expiry is not None and expiry <= self.clock.wall():
            self._retention.untrack(key)
            self._drop_all([key])
            return False
        self._drop_all(self._retention.track(key, expiry))
        return key in self._crdts

    def _drop_all(self, keys: list[str]) -> list[str]:
        for key in keys:
            if self._crdts.pop(key, None) is not None:
                self._digests.pop(key, None)
                self._dropped.append(key)
        return keys

    # -- local mutations ------------------------------------------------------------------

    def _target(self, key: str, kind: type[C]) -> tuple[C, bool]:
        crdt = self._crdts.get(key)
        if crdt is None:
            return kind(), True
        if not isinstance(crdt, kind):
            raise _mismatch(key, crdt.type_tag, kind.type_tag)
        return crdt, False

    def _emit(self, key: str, crdt: Crdt, new: bool, delta: Crdt, changed: bool) -> Delta:
        if new:
            self._crdts[as_name(key, "key", CrdtValueError)] = crdt
        self._digests.pop(key, None)
        return Delta(key, crdt.type_tag, delta.to_wire(), changed)

    def declare(self, key: str, type_tag: str) -> Delta:
        """Fix the type of `key` (creating it empty); the delta carries that to peers."""
        cls = TYPES.get(type_tag)
        if cls is None:
            raise CrdtValueError(f"unknown crdt type {type_tag!r}")
        crdt, new = self._target(key, cls)
        return self._emit(key, crdt, new, cls(), new)

    def incr(self, key: str, n: int = 1) -> Delta:
        """Add `n` > 0 to a gcounter or pncounter; an unknown key becomes a gcounter."""
        crdt = self._crdts.get(key)
        new = crdt is None
        if crdt is None:
            crdt = GCounter()
        elif not isinstance(crdt, GCounter | PNCounter):
            raise _mismatch(key, crdt.type_tag, GCounter.type_tag)
        return self._emit(key, crdt, new, crdt.increment(self.clock.replica_id, n), True)

    def decr(self, key: str, n: int = 1) -> Delta:
        """Subtract `n` > 0 from a pncounter; an unknown key becomes one."""
        crdt, new = self._target(key, PNCounter)
        return self._emit(key, crdt, new, crdt.decrement(self.clock.replica_id, n), True)

    def set_register(self, key: str, value: Any, ttl_ms: int | None = None) -> Delta:
        """Write an LWW register at the next HLC timestamp, expiring `ttl_ms` later if given."""
        crdt, new = self._target(key, LWWRegister)
        before = pack(crdt.value())
        delta = crdt.assign(value, self.clock.now(), ttl_ms)
        emitted = self._emit(key, crdt, new, delta, new or pack(crdt.value()) != before)
        self._settle(key)
        return emitted

    def map_set(self, key: str, field: str, value: Any) -> Delta:
        """Write one field of an LWW map."""
        crdt, new = self._target(key, LWWMap)
        before = crdt.get(field, _ABSENT)
        delta = crdt.set(field, value, self.clock.now())
        return self._emit(key, crdt, new, delta, new or _differ(before, crdt.get(field)))

    def map_delete(self, key: str, field: str) -> Delta:
        """Delete one field of an LWW map (a tombstone write, so it beats older sets)."""
        crdt, new = self._target(key, LWWMap)
        before = crdt.get(field, _ABSENT)
        delta = crdt.delete(field, self.clock.now())
        return self._emit(key, crdt, new, delta, new or before is not _ABSENT)

    def set_add(self, key: str, item: Any) -> Delta:
        """Add an element to an add-wins OR-set."""
        crdt, new = self._target(key, ORSet)
        size = len(crdt)
        delta = crdt.add(self.clock.replica_id, item)
        return self._emit(key, crdt, new, delta, new or len(crdt) != size)

    def set_remove(self, key: str, item: Any) -> Delta:
        """Remove an element (its observed adds) from an OR-set; absent is a no-op delta."""
        crdt, new = self._target(key, ORSet)
        size = len(crdt)
        delta = crdt.remove(item)
        return self._emit(key, crdt, new, delta, new or len(crdt) != size)

    # -- replication ----------------------------------------------------------------------

    def _check_clock(self, incoming: Iterable[Crdt], trusted: bool) -> None:
        stamps = [ts for crdt in incoming if (ts := crdt.latest()) is not None]
        if stamps:
            if trusted:
                self.clock.advance(max(stamps))
            else:
                self.clock.observe(max(stamps))

    def apply(self, delta: Delta, *, trusted: bool = False) -> bool:
        """Check and merge a remote delta (or full state); True when the value changed.

        Raises CrdtDecodeError (malformed), CrdtTypeMismatch (key holds another type) or,
        unless `trusted` (own log replay), ClockDriftError (timestamp too far ahead); the
        state is unchanged when it raises.
        """
        key = as_name(delta.key, "delta key")
        cls = _type_for(delta.type_tag)
        current = self._crdts.get(key)
        if current is not None and type(current) is not cls:
            raise _mismatch(key, current.type_tag, cls.type_tag)
        incoming = cls.from_wire(delta.wire)
        self._check_clock((incoming,), trusted)
        self._digests.pop(key, None)
        if current is None:
            self._crdts[key] = incoming
            return self._settle(key)
        changed = current.merge(incoming)
        return changed if self._settle(key) else True  # a drop changes the value too

    def full_delta(self, key: str) -> Delta:
        """The whole state of `key` as a delta: what anti-entropy sends when digests differ."""
        crdt = self._crdts[key]
        return Delta(key, crdt.type_tag, crdt.to_wire(), False)

    def digest_of(self, key: str) -> bytes:
        """The 8-byte BLAKE2b of `[type_tag, wire]` of one key (KeyError if unknown)."""
        digest = self._digests.get(key)
        if digest is None:
            crdt = self._crdts[key]
            data = pack([crdt.type_tag, crdt.to_wire()])
            digest = self._digests[key] = hashlib.blake2b(data, digest_size=DIGEST_BYTES).digest()
        return digest

    def digest(self) -> dict[str, bytes]:
        """{key: 8-byte BLAKE2b of [type_tag, wire]}, sorted by key; equal iff states equal."""
        return {key: self.digest_of(key) for key in sorted(self._crdts)}

    def snapshot(self) -> dict[str, list[Any]]:
        """`{key: [type_tag, wire]}`, sorted by key: a plain msgpack-able value (expired
        registers left out)."""
        self.expire()
        return {key: [crdt.type_tag, crdt.to_wire()] for key, crdt in sorted(self._crdts.items())}

    def restore(self, snapshot: Any, *, trusted: bool = True) -> list[str]:
        """Merge a snapshot in (own on restart, or a peer's to bootstrap: trusted=False).

        Everything is checked before anything is merged, so an error leaves the state
        unchanged. Returns the keys whose value changed, sorted.
        """
        incoming: dict[str, Crdt] = {}
        for key, entry in as_map(snapshot, "snapshot").items():
            tag, wire = as_array(entry, "snapshot entry", 2)
            incoming[as_name(key, "snapshot key")] = _type_for(tag).from_wire(wire)
        for key, crdt in incoming.items():
            current = self._crdts.get(key)
            if current is not None and type(current) is not type(crdt):
                raise _mismatch(key, current.type_tag, crdt.type_tag)
        self._check_clock(incoming.values(), trusted)
        changed = []
        for key, crdt in incoming.items():
            self._digests.pop(key, None)
            current = self._crdts.get(key)
            if current is None:
                self._crdts[key] = crdt
                if self._settle(key):
                    changed.append(key)
            elif current.merge(crdt) | (not self._settle(key)):
                changed.append(key)
        return sorted(changed)
