"""At most once across a queue group, on real nats-servers with real agent processes.

A frame recorded off the wire and published again reaches whichever member of the queue
group NATS picks; only the member that saw it has it in its replay window. So:

- a recorded `execute` call to two S1s, replayed many times, runs its step once;
- a recorded `run-task` call to two S3s, replayed, runs the task once;
- read-only calls through a group take no claim;
- with JetStream off, a group call that is not read-only is refused with a clear error and
  not run, while read-only calls and calls to an agent's own subject still work;
- under them, `Bus.claim`: one bus wins each message, a lost bucket is made again, and no
  JetStream is an error, never a guess.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agents import AgentClient, Unclaimed
from agents.runtime.subjects import AgentSubjects
from agents.vsm.tasks import StepIn, TaskSpec
from amcp import Bus, ClaimUnavailable, NatsServer
from amcp.claims import claims_bucket
from tests.support.agents import Cluster, view_of
from tests.support.vsm import start_vsm
from tests.support.waiting import wait_until

REPLAYS = 16  # each goes to a member NATS picks: 2**-16 that all miss the other one


async def record_and_call(bus: Bus, subject: str, call: Any) -> tuple[bytes, Any]:
    """Make a genuine call while recording its frame off the wire, as an attacker would."""
    frames: list[bytes] = []

    async def tap(nmsg: Any) -> None:
        frames.append(nmsg.data)

    wiretap = await bus.nc.subscribe(subject, cb=tap)
    await bus.flush()
    result = await call
    await wait_until(lambda: frames, 5, what="the call's frame on the wire")
    await wiretap.unsubscribe()
    assert len(frames) == 1
    return frames[0], result


async def replay(bus: Bus, subject: str, frame: bytes, times: int) -> None:
    for _ in range(times):
        await bus.publish_frame(subject, frame)
    await bus.flush()


async def counts(client: AgentClient, observer: str, ids: list[str], done: Any) -> dict[str, int]:
    """Summed over `ids`, from their heartbeats: frames refused as replays, as duplicates,
    and the work `done(stats)` counts."""
    view = await view_of(client, observer)
    total = {"replay": 0, "duplicate": 0, "done": 0}
    for member in [] if view is None else view.members:
        if member.id in ids:
            rejections = member.stats.get("rejections") or {}
            total["replay"] += rejections.get("replay", 0)
            total["duplicate"] += rejections.get("duplicate", 0)
            total["done"] += done(member.stats)
    return total


async def settle(
    client: AgentClient, observer: str, ids: list[str], done: Any, deliveries: int
) -> dict[str, int]:
    """Wait until every delivery is accounted for: run, refused as a replay, or dropped as
    a duplicate; return the counts."""
    seen: dict[str, int] = {}

    async def accounted() -> bool:
        seen.update(await counts(client, observer, ids, done))
        return sum(seen.values()) >= deliveries

    await wait_until(accounted, 60, what=f"{deliveries} deliveries accounted for: {seen}")
    return seen


def s1_steps(stats: dict[str, Any]) -> int:
    steps = ((stats.get("extensions") or {}).get("role-s1") or {}).get("steps") or {}
    return steps.get("ok", 0) + steps.get("failed", 0)


def s3_cycles(stats: dict[str, Any]) -> int:
    cycles = ((stats.get("extensions") or {}).get("role-s3") or {}).get("cycles") or {}
    return cycles.get("succeeded", 0) + cycles.get("failed", 0)


async def test_one_bus_of_a_group_wins_each_message(make_bus, cluster_name) -> None:
    sender = await make_bus("caller", cluster=cluster_name)
    members = [await make_bus(f"m{i}", cluster=cluster_name) for i in range(2)]
    inboxes = [await m.subscribe("work.items") for m in members]  # not a group: both see all
    await members[0].flush()
    await sender.publish("work.items", {"n": 1})
    got = [await inbox.next(5) for inbox in inboxes]
    won = [await m.claim(msg) for m, msg in zip(members, got, strict=True)]
    assert sorted(won) == [False, True]
    assert [m.rejections["duplicate"] for m in members] == [int(not w) for w in won]
    assert not await members[0].claim(got[0])  # and never again

    # An in-memory bucket lost with its server's restart is made again on the next claim.
    await members[0].nc.jetstream().delete_stream(members[0].claims.stream)
    await sender.publish("work.items", {"n": 2})
    msg = await inboxes[0].next(5)
    assert await members[0].claim(msg) and not await members[1].claim(msg)


async def test_a_claim_without_jetstream_is_an_error_not_a_guess(keyring) -> None:
    with NatsServer(name="claims-off", extra_config="jetstream: false\n") as server:
        bus = await Bus.connect(server.url, keyring=keyring, sender="m0")
        try:
            inbox = await bus.subscribe("work.items")
            await bus.flush()
            await bus.publish("work.items", {"n": 1})
            msg = await inbox.next(5)
            with pytest.raises(ClaimUnavailable, match="JetStream is not enabled"):
                await bus.claim(msg)
            assert bus.rejections["duplicate"] == 0
        finally:
            await bus.close()


async def test_a_replayed_execute_runs_once_across_two_s1s(agent_cluster, make_bus, tmp_path):
    bus = await make_bus("tester", cluster=agent_cluster.name)
    await start_vsm(agent_cluster, bus, [("s1", "s1-a"), ("s1", "s1-b")])
    client = AgentClient(bus)
    ran = tmp_path / "ran.txt"
    step = StepIn(task_id="t1", step=0, text=f"echo ran >> {ran}", cwd=str(tmp_path))
    subject = AgentSubjects(bus.subjects).role("s1")

    frame, result = await record_and_call(
        bus, subject, client.call("s1", "execute", step.model_dump(), timeout=10)
    )
    assert result.output["ok"]
    await replay(bus, subject, frame, REPLAYS)

    seen = await settle(client, "s1-a", ["s1-a", "s1-b"], s1_steps, 1 + REPLAYS)
    assert ran.read_text() == "ran\n", f"the step ran more than once: {seen}"
    assert seen["done"] == 1 and seen["duplicate"] >= 1
    assert seen["replay"] + seen["duplicate"] == REPLAYS


async def test_a_replayed_task_runs_once_across_two_s3s(agent_cluster, make_bus, tmp_path):
    bus = await make_bus("tester", cluster=agent_cluster.name)
    agents = [("s1", "s1-a"), ("s2", "s2-a"), ("s3", "s3-a"), ("s3", "s3-b"), ("s4", "s4-a"),
              ("s5", "s5-a")]  # fmt: skip
    await start_vsm(agent_cluster, bus, agents)
    client = AgentClient(bus)
    ran = tmp_path / "ran.txt"
    task = TaskSpec(description="append a line", steps=[f"echo ran >> {ran}"], cwd=str(tmp_path))
    subject = AgentSubjects(bus.subjects).role("s3")

    frame, result = await record_and_call(
        bus, subject, client.call("s3", "run-task", task.model_dump(), timeout=60)
    )
    assert result.output["success"], result.output
    await replay(bus, subject, frame, REPLAYS)

    seen = await settle(client, "s1-a", ["s3-a", "s3-b"], s3_cycles, 1 + REPLAYS)
    assert ran.read_text() == "ran\n", f"the task ran more than once: {seen}"
    assert seen["done"] == 1 and seen["duplicate"] >= 1


async def test_read_only_calls_through_a_group_take_no_claim(agent_cluster, make_bus, tmp_path):
    bus = await make_bus("tester", cluster=agent_cluster.name)
    await start_vsm(agent_cluster, bus, [("s1", "s1-a"), ("s1", "s1-b")])
    client = AgentClient(bus)
    js = bus.nc.jetstream()
    stream = f"KV_{claims_bucket(agent_cluster.name)}"

    async def claims() -> int:
        return (await js.stream_info(stream)).state.messages

    before = await claims()  # the agents opened the bucket when they started
    for tool in ("describe", "members", "viability") * 5:
        await client.call("s1", tool, timeout=5)
    await client.call("any", "describe", timeout=5)
    assert await claims() == before
    step = StepIn(task_id="t1", step=0, text="true", cwd=str(tmp_path))
    await client.call("s1", "execute", step.model_dump(), timeout=10)
    await client.call("s1-a", "execute", step.model_dump(), timeout=10)  # its own subject
    assert await claims() == before + 1


@pytest.fixture
def own_server(tmp_path: Path):
    """A nats-server of this test's own, which the test may restart without JetStream."""
    servers = [NatsServer(name="claims-js", store_dir=tmp_path / "nats").start()]
    yield servers
    for server in servers:
        server.stop()


async def test_with_jetstream_off_group_calls_are_refused_and_not_run(
    own_server, keyring_file, make_bus, tmp_path
):
    server = own_server[0]
    cluster = Cluster(server, keyring_file, tmp_path)
    try:
        bus = await make_bus("tester", servers=server.url, cluster=cluster.name)
        await start_vsm(cluster, bus, [("s1", "s1-a"), ("s1", "s1-b")])
        # The same port, JetStream off: the agents and the test's bus reconnect.
        server.stop()
        off = NatsServer(name="claims-nojs", port=server.port, extra_config="jetstream: false\n")
        own_server.append(off.start())
        client = AgentClient(bus)

        async def answering() -> bool:
            return await view_of(client, "s1-a") is not None

        await wait_until(answering, 30, what="s1-a answering on the server without JetStream")
        for _ in range(4):  # read-only calls through the group need no JetStream
            assert (await client.call("s1", "describe", timeout=5)).agent in ("s1-a", "s1-b")

        ran = tmp_path / "ran.txt"
        step = StepIn(task_id="t1", step=0, text=f"echo ran >> {ran}", cwd=str(tmp_path))
        for _ in range(4):
            with pytest.raises(Unclaimed, match="JetStream is not enabled"):
                await client.call("s1", "execute", step.model_dump(), timeout=10)
        assert not ran.exists()
        # an agent's own subject has one replay window: no claim needed
        assert (await client.call("s1-b", "execute", step.model_dump(), timeout=10)).output["ok"]
        assert ran.read_text() == "ran\n"
    finally:
        cluster.close()
