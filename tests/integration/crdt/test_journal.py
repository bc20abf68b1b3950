"""The journal of a durable replica, on a real directory: group commit, recovery of every
committed record, snapshots that cut the log, and the replica id kept in the directory."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from crdt import CrdtValueError, PersistenceError
from crdt.journal import ID_FILE, Journal
from crdt.persistence import LOG_MAGIC


async def test_concurrent_appends_share_fsyncs_and_all_recover(tmp_path: Path) -> None:
    journal, state = await Journal.open(tmp_path, "r1")
    deltas = [state.incr(f"k{i % 7}") for i in range(300)]
    results = await asyncio.gather(*(journal.append([d.to_wire()]) for d in deltas))
    assert all(results)
    assert journal.commits < 300 / 4  # grouped: far fewer fsyncs than appends
    journal._store.close()  # as a crash would: no snapshot, the log holds everything

    again, recovered = await Journal.open(tmp_path)
    assert recovered.replica_id == "r1"
    assert recovered.snapshot() == state.snapshot()
    await again.close()


async def test_snapshots_cut_the_log_and_restart_is_exact(tmp_path: Path) -> None:
    journal, state = await Journal.open(tmp_path, "r1", compact_every=50)
    for i in range(200):
        assert await journal.append([state.map_set("m", f"f{i % 9}", i).to_wire()])
    assert journal.snapshots >= 3
    assert (tmp_path / "deltas.log").stat().st_size < 50 * 64
    expected = state.snapshot()
    await journal.close()  # a clean close leaves an empty log behind a snapshot
    assert (tmp_path / "deltas.log").read_bytes() == LOG_MAGIC

    again, recovered = await Journal.open(tmp_path, compact_every=50)
    assert recovered.snapshot() == expected
    later = recovered.map_set("m", "f0", "after")  # the clock continues past the log
    assert later.wire["f0"][0] > expected["m"][1]["f0"][0]
    await again.close()


async def test_the_directory_keeps_its_replica_id(tmp_path: Path) -> None:
    journal, state = await Journal.open(tmp_path)
    generated = state.replica_id
    assert (tmp_path / ID_FILE).read_text().strip() == generated
    with pytest.raises(PersistenceError, match="in use"):
        await Journal.open(tmp_path)  # locked while open
    await journal.close()
    with pytest.raises(PersistenceError, match="holds replica"):
        await Journal.open(tmp_path, "someone-else")
    with pytest.raises(CrdtValueError):
        await Journal.open(tmp_path / "other", "bad.id")
    journal, state = await Journal.open(tmp_path, generated)
    assert state.replica_id == generated
    await journal.close()


async def test_a_failed_store_reports_false_and_stays_failed(tmp_path: Path) -> None:
    journal, state = await Journal.open(tmp_path, "r1")
    journal._store.close()  # every later write fails, as on a dead disk
    assert await journal.append([state.incr("k").to_wire()]) is False
    assert journal.failure is not None
    assert await journal.append([state.incr("k").to_wire()]) is False
