"""Durability of one replica over asyncio: recovery from its data directory, group commit
(every record handed in while a write is under way goes into the next single write and
fsync) and snapshots that cut the log every `compact_every` records.

The directory also keeps the replica's id (`replica-id`), so a restarted replica is the
same replica: its counter entries and OR-set dots continue where they stopped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from crdt.errors import CorruptStoreError, CrdtError, PersistenceError
from crdt.messages import check_replica_id
from crdt.persistence import ReplicaStore, _write_atomically
from crdt.state import Delta, ReplicaState

__all__ = ["ID_FILE", "Journal"]

log = logging.getLogger("amcp.crdt.journal")
ID_FILE = "replica-id"
_SLICE = 512  # records per log frame, so one frame stays far below its 64 MiB bound


def _claim_id(directory: Path, requested: str | None) -> str:
    path = directory / ID_FILE
    if path.exists():
        stored = check_replica_id(path.read_text().strip(), CorruptStoreError)
        if requested is not None and requested != stored:
            raise PersistenceError(f"{directory} holds replica {stored!r}, not {requested!r}")
        return stored
    replica_id = requested if requested is not None else f"r-{secrets.token_hex(6)}"
    _write_atomically(path, (replica_id + "\n").encode())
    return replica_id


def _recover(directory: Path, requested: str | None) -> tuple[ReplicaStore, ReplicaState, int]:
    store = ReplicaStore(directory)
    try:
        state = ReplicaState(_claim_id(store.directory, requested))
        snapshot, records = store.load()
        try:
            if snapshot is not None:
                state.restore(snapshot)
            for record in records:
                state.apply(Delta.from_wire(record), trusted=True)
        except CrdtError as exc:
            if isinstance(exc, PersistenceError):
                raise
            raise CorruptStoreError(f"{directory}: cannot replay the log: {exc}") from exc
    except BaseException:
        store.close()
        raise
    return store, state, len(records)


class Journal:
    """Appends records durably for one replica. `append` returns a future that resolves to
    True once the records are fsynced, or False if the store failed (then it stays failed
    and the replica must stop acknowledging: `failure` says why)."""

    def __init__(self, store: ReplicaStore, state: ReplicaState, compact_every: int) -> None:
        self.directory = store.directory
        self.compact_every = compact_every
        self.failure: PersistenceError | None = None
        self.commits = 0
        self.snapshots = 0
        self._store = store
        self._state = state
        self._pending: list[Any] = []
        self._group: asyncio.Future[bool] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._since_snapshot = 0

    @classmethod
    async def open(
        cls,
        directory: str | os.PathLike[str],
        replica_id: str | None = None,
        *,
        compact_every: int = 10_000,
    ) -> tuple[Journal, ReplicaState]:
        """Lock and recover the directory; returns the journal and the recovered state."""
        if replica_id is not None:
            check_replica_id(replica_id)
        store, state, replayed = await asyncio.to_thread(_recover, Path(directory), replica_id)
        journal = cls(store, state, compact_every)
        journal._since_snapshot = replayed
        if replayed >= compact_every:
            await journal._snapshot()
        return journal, state

    def append(self, records: Sequence[Any]) -> asyncio.Future[bool]:
        """Queue records for the next group commit."""
        loop = asyncio.get_running_loop()
        if self.failure is not None:
            failed = loop.create_future()
            failed.set_result(False)
            return failed
        if self._group is None:
            self._group = loop.create_future()
        self._pending.extend(records)
        if self._writer is None:
            self._writer = loop.create_task(self._write())
        return self._group

    async def _write(self) -> None:
        try:
            while self._pending:
                records, self._pending = self._pending, []
                group, self._group = self._group, None
                ok = await self._commit(records)
                assert group is not None
                group.set_result(ok)
                if ok and self._since_snapshot >= self.compact_every:
                    await self._snapshot()
        finally:
            self._writer = None

    async def _commit(self, records: list[Any]) -> bool:
        if self.failure is not None:
            return False
        try:
            for start in range(0, len(records), _SLICE):
                await asyncio.to_thread(self._store.append, records[start : start + _SLICE])
                self.commits += 1
        except PersistenceError as exc:
            self._fail(exc)
            return False
        self._since_snapshot += len(records)
        return True

    async def _snapshot(self) -> None:
        """Write the whole state as the snapshot (covering every record appended so far:
        they were all applied to the state first) and cut the log."""
        if self.failure is not None:
            return
        snapshot = self._state.snapshot()
        try:
            await asyncio.to_thread(self._store.write_snapshot, snapshot)
        except (PersistenceError, OSError) as exc:
            self._fail(exc if isinstance(exc, PersistenceError) else PersistenceError(str(exc)))
            return
        self._since_snapshot = 0
        self.snapshots += 1

    def _fail(self, exc: PersistenceError) -> None:
        self.failure = exc
        log.error(
            "replica %s: data directory failed, no more acknowledgements: %s",
            self._state.replica_id,
            exc,
        )

    async def drain(self) -> None:
        """Wait until every record handed in so far is on disk (or failed)."""
        while self._writer is not None:
            await asyncio.shield(self._writer)

    async def close(self) -> None:
        """Drain, snapshot (so a restart replays nothing), release the directory."""
        await self.drain()
        if self._since_snapshot:
            await self._snapshot()
        self._store.close()
