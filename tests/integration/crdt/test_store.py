"""ContextStore on a real nats-server: replication of every type, watches, write and read
concerns against durable members (a stopped member still counts), bootstrap, anti-entropy
repair of a lost delta, restart on the same directory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from amcp import Bus
from crdt import (
    ContextStore,
    CrdtTypeMismatch,
    CrdtValueError,
    PersistenceError,
    ReadConcernError,
    WriteConcernError,
    WriteResult,
)
from crdt.messages import Deltas
from tests.support.waiting import wait_until

MakeBus = Callable[..., Awaitable[Bus]]
Open = Callable[..., Awaitable[ContextStore]]


@pytest.fixture
async def open_store(make_bus: MakeBus, tmp_path: Path) -> AsyncIterator[Open]:
    """`await open_store(name, durable=False, **options)`; all closed after the test."""
    stores: list[ContextStore] = []

    async def factory(name: str, durable: bool = False, **options: Any) -> ContextStore:
        bus = await make_bus(f"bus-{name}")
        data_dir = tmp_path / name if durable else None
        rid = name if durable else None
        options.setdefault("gossip_interval", 0.2)
        store = await ContextStore.open(bus, replica_id=rid, data_dir=data_dir, **options)
        stores.append(store)
        return store

    yield factory
    for store in stores:
        await store.close()


async def members(open_store: Open, n: int = 3, **options: Any) -> list[ContextStore]:
    return [await open_store(f"d{i}", durable=True, **options) for i in range(n)]


async def test_every_type_replicates_and_converges(open_store: Open) -> None:
    a, b, c = [await open_store(name) for name in "abc"]
    await a.incr("hits", 3)
    await b.incr("hits", 4)
    await c.decr("balance", 2)  # the first use fixes the type: a PN-counter
    await wait_until(lambda: a.local("balance") == -2, 5, what="the new key to reach a")
    await a.incr("balance", 5)
    await b.set("config", {"mode": "fast"})
    await c.map_set("agents", "s1", {"role": "S1"})
    await a.map_set("agents", "s2", {"role": "S2"})
    await wait_until(lambda: "s1" in (b.local("agents") or {}), 5, what="s1 at b")
    await b.map_delete("agents", "s1")  # after it saw the write: the delete wins
    await a.add("tags", "x")
    await b.add("tags", "y")
    await wait_until(lambda: "x" in (c.local("tags") or []), 5, what="x at c")
    await c.remove("tags", "x")  # an observed remove (an unseen add would win)
    expected = {
        "agents": {"s2": {"role": "S2"}},
        "balance": 3,
        "config": {"mode": "fast"},
        "hits": 7,
        "tags": ["y"],
    }

    async def converged() -> bool:
        dumps = [await s.dump() for s in (a, b, c)]
        return all(d == expected for d in dumps)

    await wait_until(converged, 5, what="three replicas to converge")


async def test_watch_sees_local_and_remote_changes_until_cancelled(open_store: Open) -> None:
    a, b = await open_store("a"), await open_store("b")
    seen: list[tuple[str, Any]] = []
    async_seen: list[str] = []

    async def on_async(key: str, value: Any) -> None:
        async_seen.append(key)

    handle = a.watch("task.", lambda key, value: seen.append((key, value)))
    a.watch("task.", on_async)
    await a.incr("task.done")
    await a.incr("other")  # not under the prefix
    await b.incr("task.done", 2)
    await wait_until(lambda: seen[-1:] == [("task.done", 3)], 5, what="the remote change")
    assert seen[0] == ("task.done", 1)
    assert all(key.startswith("task.") for key, _ in seen)
    await wait_until(lambda: len(async_seen) == len(seen), 5, what="the async callback")
    handle.cancel()
    count = len(seen)
    await b.incr("task.done")
    await wait_until(lambda: a.local("task.done") == 4, 5, what="the next change")
    assert len(seen) == count


async def test_a_watch_with_wanted_hears_only_the_keys_it_picks(open_store: Open) -> None:
    a, b = await open_store("a"), await open_store("b")
    seen: list[tuple[str, Any]] = []
    asked: list[str] = []

    def wanted(key: str) -> bool:
        asked.append(key)
        return key.endswith(".mine")

    a.watch("job.", lambda key, value: seen.append((key, value)), wanted=wanted)
    await a.set("job.other", 1)
    await b.set("job.mine", {"n": 2})  # remote, as a replicated record arrives
    await b.set("job.theirs", 3)
    await a.set("elsewhere", 4)  # not under the prefix: not even asked
    await wait_until(lambda: a.local("job.theirs") == 3, 5, what="the remote writes")
    assert seen == [("job.mine", {"n": 2})]
    assert sorted(set(asked)) == ["job.mine", "job.other", "job.theirs"]


async def test_write_concerns_count_durable_members(open_store: Open) -> None:
    d = await members(open_store)
    client = await open_store("client")
    assert client.members() == ["d0", "d1", "d2"]
    assert await client.incr("c", write="local") == WriteResult(1, 1)
    one = await client.incr("c", write="one")
    assert one.needed == 1 and one.acks >= 1  # more acks may be in by then
    majority = await client.incr("c", write="majority")
    assert majority.needed == 2 and majority.acks >= 2
    assert await client.incr("c", write="all") == WriteResult(3, 3)
    assert all(s.local("c") == 4 for s in d)  # `all` means every member holds it
    assert await d[0].incr("own", write="local") == WriteResult(1, 1)  # its own fsync


async def test_a_minority_never_satisfies_majority(open_store: Open) -> None:
    d = await members(open_store)
    client = await open_store("client")
    await d[1].close()
    await d[2].close()
    assert client.members() == ["d0", "d1", "d2"]  # stopped members still count
    with pytest.raises(WriteConcernError) as err:
        await client.incr("c", write="majority", timeout=0.5)
    assert (err.value.acks, err.value.needed) == (1, 2)
    with pytest.raises(WriteConcernError) as err:
        await d[0].incr("c", write="all", timeout=0.3)
    assert (err.value.acks, err.value.needed) == (1, 3)
    with pytest.raises(ReadConcernError) as rerr:
        await client.get("c", read="majority", timeout=0.3)
    assert (rerr.value.acks, rerr.value.needed) == (1, 2)
    assert await client.incr("c", write="one") == WriteResult(1, 1)


async def test_a_member_back_before_the_timeout_completes_the_write(
    open_store: Open, make_bus: MakeBus, tmp_path: Path
) -> None:
    d = await members(open_store)
    client = await open_store("client")
    await d[1].close()
    await d[2].close()
    write = asyncio.create_task(client.incr("c", 5, write="majority", timeout=10))
    await wait_until(lambda: d[0].local("c") == 5, 5, what="the write to reach d0")
    assert not write.done()
    back = await ContextStore.open(await make_bus("bus-d1b"), data_dir=tmp_path / "d1")
    try:
        assert (await write).acks == 2  # re-sent to the member that came back
        assert back.local("c") == 5
    finally:
        await back.close()


async def test_majority_read_sees_what_a_majority_holds(
    open_store: Open, make_bus: MakeBus
) -> None:
    d = await members(open_store, gossip_interval=30)  # no anti-entropy during the test
    client = await open_store("client", gossip_interval=30)
    raw = await make_bus("raw")
    # A write that only d0 and d1 received (as if the others missed its delta).
    for member in ("d0", "d1"):
        msg = Deltas("ghost", 1, [["k", "gcounter", {"ghost": 9}]])
        await raw.publish(raw.subjects.area("ctx", "rep", member), msg.to_wire(), kind="ctx")
    await wait_until(lambda: d[0].local("k") == d[1].local("k") == 9, 5, what="the push")
    assert client.local("k") is None and d[2].local("k") is None
    assert await client.get("k", read="majority") == 9  # any two members include d0 or d1
    assert await d[2].get("k", read="all") == 9


async def test_a_new_replica_bootstraps_before_open_returns(open_store: Open) -> None:
    d = await members(open_store, n=1)
    for i in range(50):
        await d[0].map_set("big", f"f{i}", i)
    await d[0].add("s", "x")
    fresh = await open_store("fresh")
    assert fresh.local("big") == {f"f{i}": i for i in range(50)}
    assert fresh.local("s") == ["x"]
    assert fresh.replicas() == sorted(["d0", fresh.replica_id])


async def test_anti_entropy_repairs_a_lost_delta(open_store: Open, make_bus: MakeBus) -> None:
    a, b, c = [await open_store(name) for name in "abc"]
    raw = await make_bus("raw")
    # Only `a` receives this delta (sent to its own subject): b and c lost it.
    msg = Deltas(
        "ghost",
        1,
        [["lost", "orset", {"dc": [], "e": [["x", [["ghost", 1]]]], "vv": {"ghost": 1}}]],
    )
    await raw.publish(raw.subjects.area("ctx", "rep", a.replica_id), msg.to_wire(), kind="ctx")
    await wait_until(
        lambda: b.local("lost") == c.local("lost") == ["x"],
        5,
        what="anti-entropy to repair the lost delta",
    )
    assert a.stats["syncs"] + b.stats["syncs"] + c.stats["syncs"] > 0


async def test_restart_on_the_same_directory_keeps_every_write(
    make_bus: MakeBus, tmp_path: Path
) -> None:
    bus = await make_bus("solo")
    store = await ContextStore.open(bus, data_dir=tmp_path / "solo", compact_every=20)
    for i in range(60):
        await store.incr("n")
        await store.add("s", i % 5)
        if i % 5 == 4:
            await store.remove("s", 0)
    rid, expected = store.replica_id, await store.dump()
    assert store.stats["snapshots"] >= 2
    await store.close()
    again = await ContextStore.open(bus, data_dir=tmp_path / "solo")
    try:
        assert again.replica_id == rid and again.members() == [rid]
        assert await again.dump() == expected
        await again.add("s", "later")  # dots continue: no clash with the old ones
        assert set(again.local("s")) == {*expected["s"], "later"}
    finally:
        await again.close()


async def test_bad_local_calls_change_nothing_and_send_nothing(open_store: Open) -> None:
    a = await open_store("a")
    await a.incr("n")
    sent = a.stats.get("deltas_out", 0)
    with pytest.raises(CrdtTypeMismatch):
        await a.add("n", "x")
    with pytest.raises(CrdtValueError):
        await a.incr("n", 0)
    with pytest.raises(CrdtValueError):
        await a.set("_ctx.replicas", 1)  # reserved
    with pytest.raises(CrdtValueError):
        await a.set("big", "x" * 300_000)
    with pytest.raises(CrdtValueError):
        await a.incr("n", write="quorum")  # type: ignore[arg-type]
    assert a.local("n") == 1 and a.local("big") is None
    assert a.stats.get("deltas_out", 0) == sent


async def test_no_members_means_concerns_beyond_local_fail(open_store: Open) -> None:
    a = await open_store("a")
    assert a.members() == []
    with pytest.raises(WriteConcernError) as err:
        await a.incr("n", write="one", timeout=0.2)
    assert (err.value.acks, err.value.needed) == (0, 1)
    with pytest.raises(ReadConcernError):
        await a.dump(read="one", timeout=0.2)


async def test_forget_shrinks_the_members_and_a_watch_sees_membership(open_store: Open) -> None:
    d = await members(open_store)
    client = await open_store("client")
    changes: list[Any] = []
    client.watch("_ctx.replicas", lambda key, value: changes.append(sorted(value)))
    client.watch("", lambda key, value: changes.append(key))  # user keys only
    await d[2].close()  # its record now says it stopped: it is still a member
    await wait_until(lambda: changes == [["d0", "d1", "d2"]], 5, what="d2's stop record")
    with pytest.raises(WriteConcernError):
        await client.incr("c", write="all", timeout=0.3)
    await client.forget("d2", write="majority")
    assert client.members() == ["d0", "d1"]
    await wait_until(lambda: d[0].members() == ["d0", "d1"], 5, what="d0 to learn it")
    assert await client.incr("c", write="all") == WriteResult(2, 2)
    assert changes[1:] == ["c", ["d0", "d1"], "c"]  # "" does not see reserved keys


async def test_open_refuses_bad_options(make_bus: MakeBus) -> None:
    bus = await make_bus("opts")
    for options in (
        {"gossip_interval": 0},
        {"bootstrap_timeout": -1},
        {"compact_every": 0},
        {"replica_id": "a.b"},
    ):
        with pytest.raises(CrdtValueError):
            await ContextStore.open(bus, **options)


async def test_a_replica_whose_disk_fails_stops_acking_and_sends_nothing_unsaved(
    open_store: Open,
) -> None:
    d = await members(open_store, n=2)
    peer = await open_store("peer")
    await d[0].incr("n", write="all")
    d[0]._journal._store.close()  # type: ignore[union-attr]  # every later fsync fails
    with pytest.raises(PersistenceError):
        await d[0].incr("n", 5)
    with pytest.raises(WriteConcernError) as err:
        await peer.incr("m", write="all", timeout=0.3)
    assert err.value.acks == 1  # d1 only: d0 no longer acknowledges
    with pytest.raises(ReadConcernError):
        await peer.get("n", read="all", timeout=0.3)  # d0 refuses to hand out state
    assert peer.local("n") == 1 and d[1].local("n") == 1


async def test_a_replica_that_reached_no_member_never_counts_a_majority(
    open_store: Open, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by the partition chaos test: a fresh client whose bootstrap reached no member
    (as in a minority partition) must not count only the durable replicas it hears, in the
    window before anti-entropy with them has brought the registered member set."""
    from crdt.antientropy import AntiEntropy
    from crdt.bootstrap import Bootstrap

    d = await members(open_store)
    await d[1].close()
    await d[2].close()  # registered members still; only d0 is reachable

    async def reached_nobody(self: object, *args: object) -> bool:
        return False

    monkeypatch.setattr(Bootstrap, "catch_up", reached_nobody)
    monkeypatch.setattr(AntiEntropy, "sync_quietly", reached_nobody)  # the window, held open
    client = await open_store("client", gossip_interval=60.0)
    await wait_until(lambda: "d0" in client.members(), 5, what="d0's announcement")
    assert client.members() == ["d0"]  # all this replica has heard of
    with pytest.raises(WriteConcernError) as err:
        await client.incr("c", write="majority", timeout=0.5)
    assert err.value.acks == 1 and err.value.needed == 2  # one heard, so more than one needed
    assert (await client.incr("c", write="one")).acks >= 1  # `one` needs no member count
    monkeypatch.undo()  # anti-entropy may run again: it brings the three registered members
    await client.dump(read="one", timeout=2)  # a full sync with d0
    assert client.members() == ["d0", "d1", "d2"]
    with pytest.raises(WriteConcernError) as err:
        await client.incr("c", write="majority", timeout=0.5)
    assert (err.value.acks, err.value.needed) == (1, 2)
