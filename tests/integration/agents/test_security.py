"""Frames forged or replayed at an agent: counted by reason in `amcp status --json`, and
they change nothing (no call runs twice, no log entry, no member change)."""

from __future__ import annotations

from agents import AgentClient, read_cluster_log
from agents.runtime.subjects import AgentSubjects, call_request
from amcp import Keyring
from amcp.protocol import Sealer
from tests.support.agents import view_of
from tests.support.cli import amcp_json
from tests.support.waiting import wait_until


async def test_forged_and_replayed_frames_are_counted_and_change_nothing(
    agent_cluster, make_bus, cli_env
) -> None:
    agent_cluster.spawn("s1", "target", capabilities=["echo"])
    agent_cluster.spawn("s2", "witness")
    bus = await make_bus("mallory", cluster=agent_cluster.name)
    client = AgentClient(bus)
    for agent_id in ("target", "witness"):
        await wait_until(lambda i=agent_id: _up(client, i), 15, what=f"{agent_id} up")
    env = agent_cluster.env(cli_env)
    before = await amcp_json("status", env=env)

    subjects = AgentSubjects(bus.subjects)
    subject = subjects.call("target")
    inbox = f"_INBOX.t.{agent_cluster.name}"
    replies = await bus.subscribe(inbox)
    frame = bus.sealer.seal(
        subject, call_request("echo", {"text": "once"}), "req", {"reply-to": inbox}
    )
    await bus.publish_frame(subject, frame)  # genuine: runs once
    assert (await replies.next(5)).body["output"] == {"text": "once"}
    await bus.publish_frame(subject, frame)  # replayed
    await bus.publish_frame(subject, frame)
    forged = bytearray(
        bus.sealer.seal(subject, call_request("echo", {"text": "x"}), "req", {"reply-to": inbox})
    )
    forged[-5] ^= 0xFF
    await bus.publish_frame(subject, bytes(forged))  # bad signature
    stranger = Sealer("mallory", Keyring.generate())
    await bus.publish_frame(
        subject,
        stranger.seal(subject, call_request("echo", {"text": "y"}), "req", {"reply-to": inbox}),
    )  # unknown key
    remove = subjects.any
    await bus.publish_frame(
        remove,
        stranger.seal(
            remove, call_request("remove-member", {"id": "witness"}), "req", {"reply-to": inbox}
        ),
    )
    await bus.flush()

    async def counted() -> dict[str, int]:
        status = await amcp_json("status", env=env)
        target = next(m for m in status["members"] if m["id"] == "target")
        return target["stats"]["rejections"]

    async def all_counted() -> bool:
        r = await counted()
        return r["replay"] == 2 and r["bad_signature"] == 1 and r["unknown_key"] >= 1

    await wait_until(all_counted, 20, what="the rejections in amcp status")

    after = await amcp_json("status", env=env)
    target = next(m for m in after["members"] if m["id"] == "target")
    assert target["stats"]["calls"]["ok"] == 1  # the echo ran once
    assert {m["id"] for m in after["members"]} == {m["id"] for m in before["members"]}
    assert {m["liveness"] for m in after["members"]} == {"alive"}
    assert replies.delivered == 1  # no answer to anything forged or replayed
    entries, _ = await read_cluster_log(bus, agent="target")
    assert [e.event for e in entries] == ["started", "task_received", "task_completed"]


async def _up(client: AgentClient, agent_id: str) -> bool:
    return await view_of(client, agent_id) is not None
