"""`amcp ctx delete`, `ctx forget` and `ctx replicas` as a user runs them, against durable
members on a real nats-server: a delete is a tombstone write with a newer HLC timestamp,
a decommissioned replica can be forgotten (a running one cannot), and the listing tells a
live replica from one stopped gracefully and from one that went silent."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

from crdt import ContextStore
from tests.support.cli import start_async
from tests.support.crdt import ctx
from tests.support.waiting import wait_until


async def test_delete_a_map_field_and_a_register(
    members: list[ContextStore], env: dict[str, str]
) -> None:
    for args in (("cfg", '{"a": 1}'), ("agents", "S1", "--field", "a1")):
        assert (await ctx(env, "set", *args, "--write", "all"))[0] == 0
    assert (await ctx(env, "set", "agents", "S2", "--field", "a2", "--write", "all"))[0] == 0
    code, out, err = await ctx(env, "delete", "agents", "--field", "a1", "--write", "all")
    assert code == 0, err
    assert json.loads((await ctx(env, "get", "agents", "--json"))[1])["value"] == {"a2": "S2"}
    code, out, err = await ctx(env, "delete", "cfg", "--write", "majority", "--json")
    assert code == 0 and json.loads(out)["value"] is None, err
    # the tombstone reached every member: no replica holds the old value any more
    await wait_until(
        lambda: all(m.local("cfg", "gone") is None for m in members), 10, what="the tombstone"
    )
    assert all(m.local("agents") == {"a2": "S2"} for m in members)


async def test_delete_refuses_what_the_crdts_cannot_delete(
    members: list[ContextStore], env: dict[str, str]
) -> None:
    assert (await ctx(env, "incr", "hits"))[0] == 0
    assert (await ctx(env, "set", "m", "1", "--field", "f"))[0] == 0
    assert (await ctx(env, "add", "s", "x"))[0] == 0
    for args, says in [
        (("hits",), "a gcounter cannot be deleted"),
        (("s",), "ctx remove"),
        (("m",), "--field"),
        (("missing",), "no key 'missing'"),
        (("hits", "--field", "f"), "not a map"),
    ]:
        code, _, err = await ctx(env, "delete", *args)
        assert code == 1 and says in err and len(err.strip().splitlines()) == 1, (args, err)
    # a refused delete wrote nothing
    assert members[0].local("missing", "absent") == "absent"


async def test_replicas_tell_live_stopped_and_silent_apart_and_forget_the_gone(
    members: list[ContextStore], env: dict[str, str], tmp_path: Path
) -> None:
    serve = await start_async(
        "ctx", "serve", "--data-dir", str(tmp_path / "m3"), "--id", "m3", "--json",
        env=env, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert serve.stdout is not None
    await asyncio.wait_for(serve.stdout.readline(), 20)
    serve.kill()  # crashed: it never says goodbye
    await serve.wait()
    await members[1].close()  # stopped gracefully
    code, out, err = await ctx(env, "replicas", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["members"] == ["m0", "m1", "m2", "m3"]  # all still count for concerns
    assert doc["replicas"] == ["m0", "m2"]  # those announcing now
    states = {row["id"]: row["state"] for row in doc["status"]}
    assert states == {"m0": "live", "m1": "stopped", "m2": "live", "m3": "silent"}
    human = (await ctx(env, "replicas"))[1]
    assert "m1  stopped" in human and "m3  not seen for" in human, human

    code, _, err = await ctx(env, "forget", "m0")
    assert code == 1 and "m0 is running" in err, err
    code, _, err = await ctx(env, "forget", "nobody")
    assert code == 1 and "not a member" in err, err
    for gone in ("m1", "m3"):
        # two of four members are down: only `one` (the default) can still be met
        code, _, err = await ctx(env, "forget", gone)
        assert code == 0, err
    doc = json.loads((await ctx(env, "replicas", "--json"))[1])
    assert doc["members"] == ["m0", "m2"]
