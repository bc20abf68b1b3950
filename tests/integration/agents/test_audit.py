"""The audit log: what agents did, in order, in each agent's JSONL file and in the cluster
stream; `amcp log` verifies what it reads and skips forged, misattributed or replayed
entries."""

from __future__ import annotations

import json

from agents import AgentClient, read_cluster_log, read_local_log
from agents.runtime.audit import AUDIT_FILE
from agents.runtime.subjects import AgentSubjects
from tests.support.agents import view_of
from tests.support.cli import amcp_async
from tests.support.waiting import wait_until


async def test_the_log_holds_what_happened_in_order(
    agent_cluster, make_bus, cli_env, tmp_path
) -> None:
    a = agent_cluster.spawn("s1", "ann", capabilities=["echo"], data_dir=tmp_path / "ann")
    b = agent_cluster.spawn("s2", "bob", capabilities=["echo"])
    client = AgentClient(await make_bus("tester", cluster=agent_cluster.name))
    for agent_id in ("ann", "bob"):
        await wait_until(lambda i=agent_id: _up(client, i), 15, what=f"{agent_id} up")
    order = ["ann", "bob", "ann", "bob", "bob"]
    for n, agent_id in enumerate(order):
        await client.call(agent_id, "echo", {"text": str(n)})
    assert a.terminate() == 0
    assert b.terminate() == 0

    env = agent_cluster.env(cli_env)
    ann = await amcp_json_lines(env, "log", "--agent", "ann")
    assert [e["event"] for e in ann] == [
        "started",
        "task_received",
        "task_completed",
        "task_received",
        "task_completed",
        "stopped",
    ]
    assert [e["n"] for e in ann] == [1, 2, 3, 4, 5, 6]
    seqs = [e["seq"] for e in ann]
    assert seqs == sorted(seqs)
    assert ann[-1]["calls"] == {"ok": 2, "failed": 0, "refused": 0, "invalid": 0}
    assert ann[1]["call"] == ann[2]["call"] and ann[1]["caller"] == "tester"

    local = list(read_local_log(tmp_path / "ann" / AUDIT_FILE))
    assert [e["event"] for e in local] == [e["event"] for e in ann]
    assert [e["ts"] for e in local] == [e["ts"] for e in ann]

    everyone = await amcp_json_lines(env, "log")
    completed = [e["agent"] for e in everyone if e["event"] == "task_completed"]
    assert completed == order  # the cluster stream keeps the order things happened in
    assert [e["seq"] for e in everyone] == sorted(e["seq"] for e in everyone)
    last_two = await amcp_json_lines(env, "log", "--count", "2")
    assert [e["event"] for e in last_two] == ["stopped", "stopped"]

    human = await amcp_async("log", "--agent", "bob", "--count", "1", env=env)
    assert human.returncode == 0 and "bob (s2) stopped" in human.stdout


async def test_forged_misattributed_and_replayed_entries_are_skipped(
    agent_cluster, make_bus, cli_env
) -> None:
    agent_cluster.spawn("s1", "eve-target")
    bus = await make_bus("mallory", cluster=agent_cluster.name)
    client = AgentClient(bus)
    await wait_until(lambda: _up(client, "eve-target"), 15, what="the agent")
    subjects = AgentSubjects(bus.subjects)
    subject = subjects.audit("eve-target")
    await wait_until(lambda: _logged(bus, "eve-target"), 15, what="the started entry")

    genuine = (await bus.streams.read(subjects.audit_stream, subject=subject))[0][2]
    await bus.publish_frame(subject, genuine)  # replayed into the stream
    tampered = bytearray(
        bus.sealer.seal(subject, {"agent": "eve-target", "event": "stopped"}, "audit")
    )
    tampered[-1] ^= 1
    await bus.publish_frame(subject, bytes(tampered))  # forged
    # signed by mallory, but claiming to be the agent's entry
    await bus.streams.publish(subject, {"agent": "eve-target", "event": "stopped"}, kind="audit")
    await bus.flush()
    await wait_until(lambda: _stored(bus, subjects, subject, 4), 15, what="4 stored frames")

    done = await amcp_async(
        "log", "--agent", "eve-target", "--json", env=agent_cluster.env(cli_env)
    )
    assert done.returncode == 0
    events = [json.loads(line)["event"] for line in done.stdout.splitlines()]
    assert events == ["started"]
    assert "'bad_signature': 1" in done.stderr and "'replay': 1" in done.stderr
    assert "'wrong_sender': 1" in done.stderr


async def amcp_json_lines(env: dict[str, str], *args: str) -> list[dict]:
    done = await amcp_async(*args, "--json", env=env)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


async def _up(client: AgentClient, agent_id: str) -> bool:
    return await view_of(client, agent_id) is not None


async def _logged(bus, agent_id: str) -> bool:
    return bool((await read_cluster_log(bus, agent=agent_id))[0])


async def _stored(bus, subjects: AgentSubjects, subject: str, n: int) -> bool:
    return len(await bus.streams.read(subjects.audit_stream, subject=subject)) >= n


async def test_filters_find_the_last_matches_beyond_the_last_count_entries(
    agent_cluster, make_bus, cli_env
) -> None:
    # --task and --trace read the last --count entries and filtered those: 23 matching
    # entries older than the last 5 showed as "(no audit entries)"
    agent_cluster.spawn("s1", "ann")
    bus = await make_bus("tester", cluster=agent_cluster.name)
    await wait_until(lambda: _logged(bus, "ann"), 15, what="ann's started entry")
    subjects = AgentSubjects(bus.subjects)
    subject = subjects.audit("tester")
    trace = "ab" * 16
    for n in range(23):
        entry = {"agent": "tester", "event": "noted", "n": n, "task": "t-old", "trace_id": trace}
        await bus.streams.publish(subject, entry, kind="audit")
    for _ in range(30):
        await bus.streams.publish(subject, {"agent": "tester", "event": "other"}, kind="audit")
    await bus.flush()
    await wait_until(lambda: _stored(bus, subjects, subject, 53), 15, what="53 stored frames")

    env = agent_cluster.env(cli_env)
    by_task = await amcp_json_lines(env, "log", "--task", "t-old", "--count", "5")
    by_trace = await amcp_json_lines(env, "log", "--trace", trace, "--count", "5")
    for found in (by_task, by_trace):
        assert [e["n"] for e in found] == [18, 19, 20, 21, 22]  # the last 5 matches, in order
    everything = await amcp_json_lines(env, "log", "--task", "t-old")
    assert len(everything) == 23
