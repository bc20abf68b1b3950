"""`amcp ctx` as a user runs it: writes and reads under concerns against durable members,
exit 3 (with the ack count) when a concern is missed, 2 on usage errors (checked in
process: no subprocess needed to parse arguments), 1 on a failed operation, and `serve`
stopping cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from amcp import Bus
from amcp.cli.main import main
from crdt import ContextStore
from tests.support.cli import start_async
from tests.support.crdt import ctx

MakeBus = Callable[..., Awaitable[Bus]]


async def test_writes_and_reads_under_concerns(
    members: list[ContextStore], env: dict[str, str]
) -> None:
    # Independent commands run side by side: each is a process of its own.
    first = await asyncio.gather(
        ctx(env, "incr", "hits", "5", "--write", "majority", "--json"),
        ctx(env, "set", "cfg", '{"a": 1}'),
        ctx(env, "set", "agents", "--field", "a1", "S1"),
        ctx(env, "add", "tags", "x", "--write", "all"),  # the remove below must see it
        ctx(env, "add", "tags", "7"),
        ctx(env, "decr", "bal", "2"),
    )
    assert [code for code, _, _ in first] == [0] * 6, first
    doc = json.loads(first[0][1])
    assert doc["ok"] and doc["value"] == 5 and doc["needed"] == 2 and doc["acks"] >= 2
    assert "needed, one)" in first[1][1]
    second = await asyncio.gather(
        ctx(env, "incr", "hits", "--write", "all"), ctx(env, "remove", "tags", "x")
    )
    assert [code for code, _, _ in second] == [0, 0], second
    assert "(3 acks, 3 needed, all)" in second[0][1]
    (code, got, _), (_, dumped, _), (_, listed, _) = await asyncio.gather(
        ctx(env, "get", "hits", "--read", "all", "--json"),
        ctx(env, "dump", "--read", "majority", "--json"),
        ctx(env, "replicas", "--json"),
    )
    assert (code, json.loads(got)) == (0, {"key": "hits", "value": 6, "found": True})
    assert json.loads(dumped) == {
        "agents": {"a1": "S1"},
        "bal": -2,
        "cfg": {"a": 1},
        "hits": 6,
        "tags": [7],
    }
    assert all(m.local("hits") == 6 for m in members)
    assert json.loads(listed)["members"] == ["m0", "m1", "m2"]


async def test_a_missed_concern_exits_3_and_says_how_many_acknowledged(
    members: list[ContextStore], env: dict[str, str]
) -> None:
    await members[1].close()
    await members[2].close()  # stopped members still count: 1 of 3 live
    code, out, err = await ctx(
        env, "incr", "hits", "--write", "majority", "--timeout", "0.5", "--json"
    )
    assert code == 3
    counts = {"acks": 1, "needed": 2, "members": 3}
    assert json.loads(out) == {"ok": False, **counts, "level": "majority"}
    assert "1 replica acknowledged, 2 needed (majority of 3 members)" in err, err
    assert "not done" in err
    code, _, err = await ctx(env, "get", "hits", "--read", "all", "--timeout", "0.5")
    assert code == 3 and "1 replica answered, 3 needed (all of 3 members)" in err, err
    assert (await ctx(env, "incr", "hits", "--write", "one"))[0] == 0


@pytest.mark.parametrize(
    "args",
    [
        ["incr", "k", "--write", "quorum"],
        ["incr", "k", "0"],
        ["incr", "k", "x"],
        ["get", "k" * 200],
        ["get", "k", "--timeout", "-1"],
        ["serve", "--data-dir", "d", "--id", "bad.id"],
        ["serve"],
    ],
)
def test_usage_errors_exit_2_with_one_line(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["ctx", *args])
    assert exit_.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


async def test_failed_operations_exit_1(members: list[ContextStore], env: dict[str, str]) -> None:
    assert (await ctx(env, "incr", "n"))[0] == 0
    code, _, err = await ctx(env, "decr", "n")  # a grow-only counter cannot go down
    assert code == 1 and "gcounter" in err
    code, out, err = await ctx(env, "get", "missing", "--json")
    assert code == 1 and json.loads(out)["found"] is False and "no key" in err
    code, _, err = await ctx(env, "set", "_ctx.replicas", "1")
    assert code == 2 and "reserved" in err


async def test_serve_runs_until_sigterm_and_exits_0(env: dict[str, str], tmp_path: Path) -> None:
    data_dir = str(tmp_path / "r")
    proc = await start_async(
        "ctx", "serve", "--data-dir", data_dir, "--id", "r1", "--json", env=env
    )
    try:
        assert proc.stdout is not None
        ready = json.loads(await asyncio.wait_for(proc.stdout.readline(), 20))
        assert ready["replica"] == "r1" and ready["members"] == ["r1"]
        code, _, err = await ctx(env, "serve", "--data-dir", data_dir)
        assert code == 1 and "in use" in err  # one process per directory
        assert (await ctx(env, "incr", "n", "3"))[0] == 0
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert (tmp_path / "r" / "snapshot").exists()
    code, out, _ = await ctx(env, "serve", "--data-dir", data_dir, "--id", "other")
    assert code == 1 and "holds replica 'r1'" in out + _
