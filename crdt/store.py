"""ContextStore: shared context for agents, by name. Counters, registers, maps and sets
that every replica can write without coordination, replicated over the Bus, durable on
replicas that have a data directory, with write and read concerns and change watches.

    store = await ContextStore.open(bus)                       # an in-memory replica
    await store.incr("tasks.done", write="majority")           # WriteResult(acks=2, needed=2)
    await store.map_set("members", "agent-7", {"role": "S1"})
    members = await store.get("members", read="majority")
    handle = store.watch("tasks.", lambda key, value: ...)
    await store.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from amcp.bus import Bus
from amcp.errors import AmcpError
from crdt.concern import Level, WriteResult, check_level
from crdt.errors import CrdtValueError, UnseenRemoveError
from crdt.journal import Journal
from crdt.lwwregister import MAX_TTL_MS
from crdt.messages import check_replica_id
from crdt.peers import MEMBERS_KEY, RESERVED_PREFIX
from crdt.replicator import Replicator
from crdt.state import Delta, ReplicaState
from crdt.wire import normalize, pack

__all__ = ["MAX_VALUE_BYTES", "ContextStore", "Watch"]

log = logging.getLogger("amcp.crdt")
MAX_VALUE_BYTES = 256 * 1024  # one value must fit a frame with room to spare
# A durable member renews its record this often, so a listing can say how long one that
# crashed has been silent; a graceful stop writes `stopped_ms` instead.
ALIVE_EVERY = 60.0
Callback = Callable[[str, Any], Awaitable[None] | None]


class Watch:
    """A registered watch; `cancel()` stops it."""

    __slots__ = ("_store", "callback", "prefix", "wanted")

    def __init__(
        self,
        store: ContextStore,
        prefix: str,
        callback: Callback,
        wanted: Callable[[str], bool] | None = None,
    ) -> None:
        self._store = store
        self.prefix = prefix
        self.callback = callback
        self.wanted = wanted

    def cancel(self) -> None:
        if self in self._store._watches:
            self._store._watches.remove(self)


def _default_id(sender: str) -> str:
    """A fresh id per in-memory replica: a reused one would clash in counter entries."""
    base = "".join(c if c.isalnum() or c in "-_" else "-" for c in sender)[:50] or "ctx"
    return f"{base}-{secrets.token_hex(4)}"


def _check_key(key: Any) -> None:
    if type(key) is str and key.startswith(RESERVED_PREFIX):
        raise CrdtValueError(f"keys starting with {RESERVED_PREFIX!r} are reserved")


def _ttl_ms(ttl: Any) -> int:
    if not (isinstance(ttl, int | float) and not isinstance(ttl, bool)) or not (
        0 < ttl <= MAX_TTL_MS / 1000
    ):
        raise CrdtValueError(f"ttl must be a number of seconds in (0, {MAX_TTL_MS // 1000}]")
    return max(1, round(ttl * 1000))


MAX_LINGER_S = 60.0  # a delta held longer would be anti-entropy's to carry anyway


def _check_linger(linger: Any) -> float:
    if not (isinstance(linger, int | float) and not isinstance(linger, bool)) or not (
        0 <= linger <= MAX_LINGER_S
    ):
        raise CrdtValueError(f"linger must be a number of seconds in [0, {MAX_LINGER_S:g}]")
    return float(linger)


def _check_value(value: Any) -> None:
    try:
        size = len(pack(value))
    except (TypeError, ValueError, OverflowError):
        return  # the CRDT's own checks name the problem
    if size > MAX_VALUE_BYTES:
        raise CrdtValueError(f"value of {size} bytes exceeds {MAX_VALUE_BYTES}")


class ContextStore:
    """One replica of the shared context. Open with `await ContextStore.open(bus, ...)`.

    Writes apply locally at once and return a WriteResult once their write concern is
    met (`local`, `one` durable replica, `majority` or `all` of the durable members), or
    raise WriteConcernError(acks, needed). Reads merge the answers of their read concern
    into the local replica. A key's type is fixed by its first write.
    """

    def __init__(self, replicator: Replicator, journal: Journal | None) -> None:
        self._rep = replicator
        self._state = replicator.state
        self._journal = journal
        self._watches: list[Watch] = []
        self._callbacks: set[asyncio.Future[None]] = set()
        self._alive: asyncio.Task[None] | None = None
        replicator.on_change = self._changed

    @classmethod
    async def open(
        cls,
        bus: Bus,
        *,
        replica_id: str | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        gossip_interval: float = 1.0,
        bootstrap_timeout: float = 2.0,
        compact_every: int = 10_000,
    ) -> ContextStore:
        """Open a replica: durable with `data_dir` (recovered from it, registered as a
        member), else in memory. Catches up from a peer before returning.

        Without `replica_id`, a durable replica keeps the id stored in its directory (a
        new one is made on first use); an in-memory one gets a fresh id each time.
        """
        for name, value in (
            ("gossip_interval", gossip_interval),
            ("bootstrap_timeout", bootstrap_timeout),
        ):
            if not (isinstance(value, int | float) and value > 0):
                raise CrdtValueError(f"{name} must be a positive number of seconds")
        if type(compact_every) is not int or compact_every < 1:
            raise CrdtValueError("compact_every must be a positive integer")
        journal = None
        if data_dir is not None:
            journal, state = await Journal.open(data_dir, replica_id, compact_every=compact_every)
        else:
            rid = check_replica_id(replica_id) if replica_id is not None else None
            state = ReplicaState(rid or _default_id(bus.sender))
        replicator = Replicator(bus, state, journal, gossip_interval=gossip_interval)
        store = cls(replicator, journal)
        try:
            await replicator.start(bootstrap_timeout)
            if journal is not None:
                record = (state.get(MEMBERS_KEY) or {}).get(state.replica_id)
                if not isinstance(record, dict) or "stopped_ms" in record:
                    await store._record({"joined_ms": state.clock.now().wall_ms})
                store._alive = asyncio.get_running_loop().create_task(store._keep_alive())
        except BaseException:
            await store.close()
            raise
        return store

    async def close(self) -> None:
        """Send pending deltas, leave, and (durable) snapshot and release the directory.
        A durable replica stays a member: it counts for concerns until `forget`; its
        record says when it stopped, so listings tell it from one that crashed."""
        if self._alive is not None and not self._rep.closed:
            self._alive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._alive
            with contextlib.suppress(AmcpError):  # a failed journal: the stop goes unrecorded
                await self._record({"stopped_ms": self._state.clock.now().wall_ms})
        await self._rep.close()
        if self._journal is not None:
            await self._journal.close()

    async def __aenter__(self) -> ContextStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _record(self, fields: dict[str, int]) -> None:
        """Write this member's record (joined, renewed, stopped), durably, here first."""
        old = (self._state.get(MEMBERS_KEY) or {}).get(self.replica_id)
        record = {"joined_ms": old.get("joined_ms", 0)} if isinstance(old, dict) else {}
        delta = self._state.map_set(MEMBERS_KEY, self.replica_id, record | fields)
        await self._rep.replicate(delta, "local", 2.0)

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(ALIVE_EVERY)
            await self._record({"seen_ms": self._state.clock.now().wall_ms})

    # -- identity ---------------------------------------------------------------------

    @property
    def replica_id(self) -> str:
        return self._state.replica_id

    @property
    def durable(self) -> bool:
        return self._journal is not None

    def replicas(self) -> list[str]:
        """Every replica known: the members plus replicas announcing themselves."""
        return self._rep.replicas()

    def members(self) -> list[str]:
        """The durable replicas that write and read concerns count (crashed ones too)."""
        return sorted(self._rep.members())

    def announcing(self) -> list[str]:
        """The other replicas heard announcing lately: running ones, members or not."""
        return self._rep.announcing()

    @property
    def on_sync(self) -> Callable[[str, dict[str, Any]], None] | None:
        """Called ("pre", {peer, records}) before and ("post", {peer, applied, refused,
        keys}) after each batch of a peer's deltas is merged (an agent's sync hooks)."""
        return self._rep.on_sync

    @on_sync.setter
    def on_sync(self, observer: Callable[[str, dict[str, Any]], None] | None) -> None:
        self._rep.on_sync = observer

    def type_of(self, key: str) -> str | None:
        """The CRDT type of `key` here ("gcounter", "lwwreg", "lwwmap", ...), None if unknown."""
        return self._state.type_of(key)

    @property
    def on_replication_lag(self) -> Callable[[float], None] | None:
        """Called with the age in seconds of each peer's delta frame as it arrives."""
        return self._rep.on_lag

    @on_replication_lag.setter
    def on_replication_lag(self, hook: Callable[[float], None] | None) -> None:
        self._rep.on_lag = hook

    @property
    def stats(self) -> dict[str, int]:
        """Counters: applied, rejected_malformed, rejected_type, rejected_clock, acks_in,
        syncs, ... and bus_rejected (frames the bus refused: bad signature, replay)."""
        counts = dict(self._rep.stats)
        counts["bus_rejected"] = self._rep.bus.stats.total
        if self._journal is not None:
            counts["commits"] = self._journal.commits
            counts["snapshots"] = self._journal.snapshots
        return counts

    # -- writes -----------------------------------------------------------------------

    async def _write(
        self,
        key: Any,
        write: Level,
        timeout: float,
        mutate: Callable[..., Delta],
        *args: Any,
        linger: float = 0.0,
    ) -> WriteResult:
        _check_key(key)
        level = check_level(write)
        return await self._rep.replicate(mutate(key, *args), level, timeout, linger)

    async def incr(
        self, key: str, n: int = 1, *, write: Level = "local", timeout: float = 2.0
    ) -> WriteResult:
        """Add n > 0 to a counter (a new key becomes a grow-only counter)."""
        return await self._write(key, write, timeout, self._state.incr, n)

    async def decr(
        self, key: str, n: int = 1, *, write: Level = "local", timeout: float = 2.0
    ) -> WriteResult:
        """Subtract n > 0 from a PN-counter (a new key becomes one; `incr` works on it too)."""
        return await self._write(key, write, timeout, self._state.decr, n)

    async def set(
        self,
        key: str,
        value: Any,
        *,
        write: Level = "local",
        timeout: float = 2.0,
        ttl: float | None = None,
        linger: float = 0.0,
    ) -> WriteResult:
        """Write an LWW register; with `ttl` (seconds), one that expires that long after
        this write on every replica (then reads as absent and is dropped everywhere).
        With `linger` (seconds) and nobody waiting (write="local" on an in-memory
        replica), its delta may wait that long to share a frame with later writes: the
        peers learn it up to `linger` later, for a frame's cost shared by several."""
        _check_value(value)
        ttl_ms = None if ttl is None else _ttl_ms(ttl)
        wait = _check_linger(linger)
        return await self._write(
            key, write, timeout, self._state.set_register, value, ttl_ms, linger=wait
        )

    async def flush(self) -> None:
        """Return once this replica's writes so far are on the bus to its peers: what this
        process publishes next (a reply) reaches the server after them."""
        await self._rep.flush()

    def limit(self, prefix: str, max_keys: int) -> None:
        """Keep at most `max_keys` expiring registers under `prefix` in this replica: past
        it, those that expire first are dropped (configure every replica alike)."""
        self._state.limit(prefix, max_keys)
        self._rep.forget_dropped()

    async def map_set(
        self, key: str, field: str, value: Any, *, write: Level = "local", timeout: float = 2.0
    ) -> WriteResult:
        """Write one field of an LWW map."""
        _check_value(value)
        return await self._write(key, write, timeout, self._state.map_set, field, value)

    async def map_delete(
        self, key: str, field: str, *, write: Level = "local", timeout: float = 2.0
    ) -> WriteResult:
        """Delete one field of an LWW map."""
        return await self._write(key, write, timeout, self._state.map_delete, field)

    async def add(
        self, key: str, item: Any, *, write: Level = "local", timeout: float = 2.0
    ) -> WriteResult:
        """Add an item to an add-wins OR-set."""
        _check_value(item)
        return await self._write(key, write, timeout, self._state.set_add, item)

    async def remove(
        self, key: str, item: Any, *, write: Level = "local", timeout: float = 2.0
    ) -> WriteResult:
        """Remove an item from an OR-set. A remove removes only the adds its replica has
        seen, so under a concern other than `local` the set is first fetched from the
        members, as a read of that concern (and from every member while the item is still
        unseen); UnseenRemoveError if it is on none of those that answered while others
        stayed silent (they may hold it: nothing is removed)."""
        _check_key(key)
        level = check_level(write)
        if level == "local":
            return await self._write(key, level, timeout, self._state.set_remove, item)
        start = asyncio.get_running_loop().time()
        answered, members = await self._rep.fetch(
            key, level, timeout, lambda: self._holds(key, item)
        )
        silent = sorted(members - answered)
        if not self._holds(key, item) and silent:
            raise UnseenRemoveError(key, item, len(answered), len(members), silent, level)
        left = max(timeout - (asyncio.get_running_loop().time() - start), 0.001)
        return await self._write(key, level, left, self._state.set_remove, item)

    def _holds(self, key: str, item: Any) -> bool:
        """Whether this replica's OR-set `key` holds `item`."""
        if self._state.type_of(key) != "orset":
            return False
        try:
            wanted = pack(normalize(item, CrdtValueError))
        except CrdtValueError:
            return False  # the remove itself names the problem
        return any(pack(element) == wanted for element in self._state.get(key))

    async def forget(
        self, replica_id: str, *, write: Level = "majority", timeout: float = 2.0
    ) -> WriteResult:
        """Remove a durable replica from the members for good (its directory is gone);
        until then a crashed member still counts for majority and all."""
        delta = self._state.map_delete(MEMBERS_KEY, check_replica_id(replica_id))
        return await self._rep.replicate(delta, check_level(write), timeout)

    # -- reads ------------------------------------------------------------------------

    def local(self, key: str, default: Any = None) -> Any:
        """The value in this replica now (a copy), or `default`."""
        return self._state.get(key, default)

    async def get(
        self, key: str, *, read: Level = "local", timeout: float = 2.0, default: Any = None
    ) -> Any:
        """The value after merging the answers of `read` replicas; ReadConcernError if too
        few answer in time."""
        await self._rep.read(check_level(read), timeout, [key])
        return self._state.get(key, default)

    async def dump(self, *, read: Level = "local", timeout: float = 2.0) -> dict[str, Any]:
        """Every key's value (reserved `_ctx.` keys left out) after a `read` merge."""
        await self._rep.read(check_level(read), timeout)
        state = self._state
        keys = state.keys()  # sorted
        return {k: state.get(k) for k in keys if not k.startswith(RESERVED_PREFIX)}

    # -- watches ----------------------------------------------------------------------

    def watch(
        self, prefix: str, callback: Callback, *, wanted: Callable[[str], bool] | None = None
    ) -> Watch:
        """Call `callback(key, value)` (sync or async) after each change of a key starting
        with `prefix`, local or remote. Reserved `_ctx.` keys only for such a prefix.
        `wanted(key)`, if given, picks the keys worth a callback before the value is read
        (each callback gets a copy of its value: on a busy prefix, e.g. a decision log, a
        watcher that wants few keys would pay a read per change for nothing)."""
        handle = Watch(self, prefix, callback, wanted)
        self._watches.append(handle)
        return handle

    def _changed(self, key: str) -> None:
        if not self._watches:
            return
        reserved = key.startswith(RESERVED_PREFIX)
        for handle in list(self._watches):
            if not key.startswith(handle.prefix) or (
                reserved and not handle.prefix.startswith(RESERVED_PREFIX)
            ):
                continue
            if handle.wanted is not None and not handle.wanted(key):
                continue
            try:
                result = handle.callback(key, self._state.get(key))
                if inspect.isawaitable(result):
                    task = asyncio.ensure_future(self._guard(result, handle.prefix, key))
                    self._callbacks.add(task)
                    task.add_done_callback(self._callbacks.discard)
            except Exception:
                log.exception("watch callback for %r raised on key %r", handle.prefix, key)

    @staticmethod
    async def _guard(result: Awaitable[None], prefix: str, key: str) -> None:
        try:
            await result
        except Exception:
            log.exception("watch callback for %r raised on key %r", prefix, key)
