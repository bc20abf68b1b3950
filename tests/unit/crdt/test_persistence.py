"""ReplicaStore: durable group-committed log, atomic snapshots, crash recovery that drops
only what was never acknowledged and refuses damage to what was."""

from __future__ import annotations

from pathlib import Path

import pytest

from crdt import (
    CorruptStoreError,
    Delta,
    HybridClock,
    PersistenceError,
    ReplicaState,
    ReplicaStore,
)
from crdt.persistence import LOG_MAGIC, LOG_NAME, SNAPSHOT_NAME
from crdt.wire import pack


def records(n: int, start: int = 0) -> list[dict[str, int]]:
    return [{"n": i} for i in range(start, start + n)]


def write(directory: Path, *groups: list[dict[str, int]]) -> list[int]:
    """Append each group with one call; returns the file size after each."""
    sizes = []
    with ReplicaStore(directory) as store:
        store.load()
        for group in groups:
            store.append(group)
            sizes.append((directory / LOG_NAME).stat().st_size)
    return sizes


def load(directory: Path) -> tuple[object, list[object]]:
    with ReplicaStore(directory) as store:
        return store.load()


def test_append_then_reload(tmp_path: Path) -> None:
    with ReplicaStore(tmp_path) as store:
        assert store.load() == (None, [])
        assert store.append(records(3)) == 3  # one frame, one fsync
        assert store.append([]) == 3
        assert store.append(records(1, 3)) == 4
    assert load(tmp_path) == (None, records(4))
    with ReplicaStore(tmp_path) as store:  # sequence numbers continue after a reopen
        store.load()
        assert store.append(records(1, 4)) == 5
    assert load(tmp_path) == (None, records(5))


def test_every_torn_tail_is_ignored_and_cut(tmp_path: Path) -> None:
    """A crash mid-append leaves any prefix of the last frame: each one loads cleanly, to
    the groups acknowledged before it, and later appends land after them."""
    sizes = write(tmp_path / "full", records(2), records(3, 2))
    full = (tmp_path / "full" / LOG_NAME).read_bytes()
    for cut in range(sizes[0], sizes[1]):
        directory = tmp_path / f"cut{cut}"
        directory.mkdir()
        (directory / LOG_NAME).write_bytes(full[:cut])
        with ReplicaStore(directory) as store:
            assert store.load() == (None, records(2))
            assert (directory / LOG_NAME).stat().st_size == sizes[0]
            store.append(records(1, 9))
        assert load(directory) == (None, [*records(2), *records(1, 9)])


def test_zero_filled_or_garbled_final_frame_is_a_torn_tail(tmp_path: Path) -> None:
    (size,) = write(tmp_path, records(2))
    log = tmp_path / LOG_NAME
    with log.open("ab") as f:
        f.write(bytes(4096))  # extended by the file system, never written
    assert load(tmp_path) == (None, records(2))
    write(tmp_path, records(1, 2))
    data = bytearray(log.read_bytes())
    data[-1] ^= 0xFF  # last frame's payload half-persisted
    log.write_bytes(bytes(data))
    assert load(tmp_path) == (None, records(2))
    assert log.stat().st_size == size


@pytest.mark.parametrize("where", ["header", "payload"])
def test_damage_before_the_tail_is_refused(tmp_path: Path, where: str) -> None:
    write(tmp_path, records(2), records(2, 2))
    log = tmp_path / LOG_NAME
    data = bytearray(log.read_bytes())
    data[len(LOG_MAGIC) + (1 if where == "header" else 14)] ^= 0x01
    log.write_bytes(bytes(data))
    with pytest.raises(CorruptStoreError, match="byte 8"):
        load(tmp_path)
    assert log.read_bytes() == bytes(data)  # refused, not "repaired"


def test_bad_magic_and_corrupt_snapshot_are_refused(tmp_path: Path) -> None:
    write(tmp_path, records(1))
    with ReplicaStore(tmp_path) as store:
        store.load()
        store.write_snapshot({"state": 1})
    snapshot = tmp_path / SNAPSHOT_NAME
    data = bytearray(snapshot.read_bytes())
    data[-1] ^= 0x01
    snapshot.write_bytes(bytes(data))
    with pytest.raises(CorruptStoreError):
        load(tmp_path)
    snapshot.unlink()
    (tmp_path / LOG_NAME).write_bytes(b"NOTALOG!")
    with pytest.raises(CorruptStoreError):
        load(tmp_path)


def test_snapshot_truncates_the_log_and_covers_earlier_records(tmp_path: Path) -> None:
    with ReplicaStore(tmp_path) as store:
        store.load()
        store.append(records(5))
        store.write_snapshot({"upto": 5})
        assert (tmp_path / LOG_NAME).read_bytes() == LOG_MAGIC
        assert store.append(records(2, 5)) == 7
    assert load(tmp_path) == ({"upto": 5}, records(2, 5))
    assert not list(tmp_path.glob("*.tmp"))


def test_crash_between_snapshot_and_truncation_skips_covered_records(tmp_path: Path) -> None:
    log = tmp_path / LOG_NAME
    with ReplicaStore(tmp_path) as store:
        store.load()
        store.append(records(4))
        before_cut = log.read_bytes()
        store.write_snapshot({"upto": 4})
    log.write_bytes(before_cut)  # as if the process died right after the rename
    assert load(tmp_path) == ({"upto": 4}, [])
    with ReplicaStore(tmp_path) as store:
        store.load()
        assert store.append(records(1, 4)) == 5
    assert load(tmp_path) == ({"upto": 4}, records(1, 4))


def test_records_missing_after_the_snapshot_are_refused(tmp_path: Path) -> None:
    first_end, _ = write(tmp_path, records(3), records(1, 3))
    log = tmp_path / LOG_NAME
    log.write_bytes(LOG_MAGIC + log.read_bytes()[first_end:])  # the first frame vanished
    with pytest.raises(CorruptStoreError, match="lost"):
        load(tmp_path)


def test_store_is_exclusive_and_must_be_loaded_first(tmp_path: Path) -> None:
    with ReplicaStore(tmp_path) as store:
        with pytest.raises(PersistenceError, match="in use"):
            ReplicaStore(tmp_path)
        with pytest.raises(PersistenceError, match="load"):
            store.append(records(1))
        store.load()
        with pytest.raises(PersistenceError, match="msgpack"):
            store.append([object()])
        assert store.append(records(1)) == 1  # a refused record consumed nothing
    ReplicaStore(tmp_path).close()  # the lock is released on close


def test_replica_state_survives_a_restart(tmp_path: Path) -> None:
    wall = [1_700_000_000_000]
    state = ReplicaState("a", HybridClock("a", wall=lambda: wall[0]))
    with ReplicaStore(tmp_path) as store:
        store.load()
        store.append([state.incr("g", 2).to_wire(), state.set_add("s", "x").to_wire()])
        store.write_snapshot(state.snapshot())
        store.append([state.set_register("r", "v").to_wire()])
        store.append([state.set_remove("s", "x").to_wire(), state.incr("g").to_wire()])
    wall[0] -= 120_000  # restarted with a wall clock two minutes behind
    again = ReplicaState("a", HybridClock("a", wall=lambda: wall[0]))
    with ReplicaStore(tmp_path) as store:
        snapshot, logged = store.load()
        again.restore(snapshot)
        for record in logged:
            again.apply(Delta.from_wire(record), trusted=True)
    assert pack(again.snapshot()) == pack(state.snapshot())
    again.set_register("r", "after restart")
    assert again.get("r") == "after restart"
