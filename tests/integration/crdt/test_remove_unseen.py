"""A remove through `amcp ctx` never reports success it did not achieve (issue 13, point 3).

An OR-set remove removes only the adds its replica has seen, so the short-lived CLI replica
must fetch the item first; when the only member holding it is stopped, the command exits 3
and says why, where it used to exit 0 with the item still in the set. The same holds for
the API's `remove` and `map_delete` on a replica that has not seen what it deletes."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from amcp import Bus
from crdt import ContextStore
from tests.support.crdt import ctx
from tests.support.waiting import wait_until

MakeBus = Callable[..., Awaitable[Bus]]


class Members:
    """Three durable members m0..m2 in this process, each stoppable and restartable."""

    def __init__(self, make_bus: MakeBus, cluster: str, root: Path) -> None:
        self.make_bus, self.cluster, self.root = make_bus, cluster, root
        self.open: dict[str, ContextStore] = {}

    async def start(self, name: str) -> ContextStore:
        bus = await self.make_bus(f"{name}-{uuid.uuid4().hex[:4]}", cluster=self.cluster)
        store = await ContextStore.open(bus, replica_id=name, data_dir=self.root / name)
        self.open[name] = store
        return store

    async def stop(self, name: str) -> None:
        await self.open.pop(name).close()


@pytest.fixture
async def members(make_bus: MakeBus, env: dict[str, str], tmp_path: Path) -> AsyncIterator:
    group = Members(make_bus, env["AMCP_CLUSTER"], tmp_path)
    for name in ("m0", "m1", "m2"):
        await group.start(name)
    yield group
    for name in list(group.open):
        await group.stop(name)


async def only_m0_holds(members: Members, key: str, write: Callable[[ContextStore], Awaitable]):
    """Leave m0 stopped as the only member holding `write`; m1 and m2 running without it."""
    await members.stop("m1")
    await members.stop("m2")
    await write(members.open["m0"])
    await members.stop("m0")
    for name in ("m1", "m2"):
        store = await members.start(name)
        assert store.local(key) is None


async def test_cli_remove_of_an_item_only_a_stopped_member_holds_exits_3(
    members: Members, env: dict[str, str]
) -> None:
    await only_m0_holds(members, "tags", lambda m0: m0.add("tags", "x", write="local"))
    code, out, err = await ctx(
        env, "remove", "tags", "x", "--write", "majority", "--timeout", "2", "--json"
    )
    assert code == 3, (out, err)
    assert "'x' is not in tags on the 2 of 3 members that answered" in err
    assert "m0 did not answer" in err and "nothing was removed" in err
    assert json.loads(out)["ok"] is False
    # It reappears with m0, and is then removed on a majority.
    await members.start("m0")
    code, out, err = await ctx(env, "remove", "tags", "x", "--write", "majority", "--json")
    assert code == 0, (out, err)
    doc = json.loads(out)
    assert doc["value"] == [] and doc["acks"] >= 2
    code, out, _ = await ctx(env, "get", "tags", "--read", "all", "--json")
    assert (code, json.loads(out)["value"]) == (0, [])


async def test_api_remove_fetches_an_item_its_replica_has_not_seen(
    members: Members, make_bus: MakeBus, env: dict[str, str]
) -> None:
    """A replica that caught up from a member without the item fetches it from the
    member that holds it before removing it, so the item goes everywhere."""
    await only_m0_holds(members, "tags", lambda m0: m0.add("tags", "y", write="local"))
    bus = await make_bus("late", cluster=env["AMCP_CLUSTER"])
    late = await ContextStore.open(bus, gossip_interval=60)  # no anti-entropy in the test
    try:
        assert late.local("tags") is None  # caught up from m1 or m2
        await members.start("m0")
        result = await late.remove("tags", "y", write="majority", timeout=5)
        assert result.acks >= 2 and late.local("tags") == []
        await wait_until(
            lambda: all(m.local("tags") == [] for m in members.open.values()),
            what="every member to drop y",
        )
    finally:
        await late.close()
