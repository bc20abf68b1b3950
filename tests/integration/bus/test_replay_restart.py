"""A frame recorded off the wire and published again after its receiver restarted, within
the 30 s skew (issue 14, point 1): a live receiver accepts no frame signed before it
started, so the replay is refused as `stale` and nothing runs again. On a real nats-server:
an S1 agent restarted by SIGTERM and by SIGKILL, `amcp listen`, and a Bus subscriber.
Stored frames are still verified by their readers (the audit log, read after the restarts).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from agents import AgentClient, read_cluster_log
from agents.runtime.subjects import AgentSubjects, call_request
from agents.vsm.tasks import StepIn
from amcp import NatsServer
from tests.support.cli import amcp_json, start
from tests.support.waiting import wait_until, wait_until_sync


async def _answers(client: AgentClient, agent_id: str) -> bool:
    """True once `agent_id` answers a call (a new process has subscribed)."""
    try:
        await client.call(agent_id, "describe", {}, timeout=1)
    except Exception:
        return False
    return True


async def _rejections(env: dict[str, str], agent_id: str) -> dict[str, int]:
    status = await amcp_json("status", env=env)
    member = next((m for m in status["members"] if m["id"] == agent_id), None)
    return {} if member is None else member["stats"]["rejections"]


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
async def test_a_recorded_execute_does_not_run_again_after_the_agent_restarts(
    agent_cluster, make_bus, cli_env, tmp_path: Path, how: str
) -> None:
    bus = await make_bus("caller", cluster=agent_cluster.name)
    prober = AgentClient(await make_bus("prober", cluster=agent_cluster.name))
    worker = agent_cluster.spawn("s1", "w1")
    await wait_until(lambda: _answers(prober, "w1"), 20, what="w1 up")

    ran = tmp_path / "ran.txt"
    step = StepIn(task_id="t1", step=0, text=f"echo ran >> {ran}", cwd=str(tmp_path))
    subject = AgentSubjects(bus.subjects).call("w1")
    inbox = f"_INBOX.replay.{agent_cluster.name}"
    replies = await bus.subscribe(inbox)
    frame = bus.sealer.seal(
        subject, call_request("execute", step.model_dump()), "req", {"reply-to": inbox}
    )
    await bus.publish_frame(subject, frame)  # genuine: the step runs once
    assert (await replies.next(10)).body["output"]["ok"]
    assert ran.read_text() == "ran\n"

    if how == "sigterm":
        worker.terminate()
    else:
        worker.kill()
    agent_cluster.spawn("s1", "w1")
    await wait_until(lambda: _answers(prober, "w1"), 20, what="w1 up again")

    await bus.publish_frame(subject, frame)  # from a sender the new process does not track
    fresh = bus.sealer.seal(subject, call_request("describe", {}), "req", {"reply-to": inbox})
    await bus.publish_frame(subject, fresh)  # now it tracks the caller: a window of its own
    assert (await replies.next(10)).body["ok"]
    await bus.publish_frame(subject, frame)  # older than that window, and than the start
    await bus.flush()

    env = agent_cluster.env(cli_env)

    async def both_refused() -> bool:
        return (await _rejections(env, "w1")).get("stale", 0) >= 2

    await wait_until(both_refused, 20, what="two stale rejections at w1")
    assert ran.read_text() == "ran\n", "the recorded step ran again after the restart"
    assert replies.delivered == 2  # the genuine call and the fresh one, nothing else
    # Durable replays still verify: the audit log written before the restart reads back.
    entries, _ = await read_cluster_log(bus, agent="w1")
    assert [e.event for e in entries].count("started") == 2


def _listeners(server: NatsServer) -> int:
    """Subscriptions to `replay.>` the server holds (a listener is ready once it has one)."""
    import urllib.request

    url = f"http://{server.host}:{server.http_port}/subsz?subs=1&limit=100000"
    with urllib.request.urlopen(url, timeout=2) as resp:
        subs = json.load(resp).get("subscriptions_list") or []
    return sum(sub["subject"] == "replay.>" for sub in subs)


def _listen(env: dict[str, str], count: int) -> subprocess.Popen[str]:
    return start("listen", "replay.>", "--count", str(count), "--json", "--timeout", "20", env=env)


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
async def test_amcp_listen_refuses_a_frame_it_saw_before_a_restart(
    make_bus, cli_env, nats_server: NatsServer, how: str
) -> None:
    bus = await make_bus("sender")
    first = _listen(cli_env, 5)
    try:
        wait_until_sync(lambda: _listeners(nats_server) == 1, 10, what="a listener")
        recorded = bus.sealer.seal("replay.a", {"n": "recorded"})
        await bus.publish_frame("replay.a", recorded)
        await bus.flush()
        line = first.stdout.readline()
        assert json.loads(line)["body"] == {"n": "recorded"}
    finally:
        first.terminate() if how == "sigterm" else first.kill()
        first.communicate(timeout=10)
    wait_until_sync(lambda: _listeners(nats_server) == 0, 10, what="the listener gone")

    second = _listen(cli_env, 1)
    try:
        wait_until_sync(lambda: _listeners(nats_server) == 1, 10, what="a listener")
        await bus.publish_frame("replay.a", recorded)  # published before the fresh one
        await bus.publish("replay.b", {"n": "fresh"})
        await bus.flush()
        out, err = second.communicate(timeout=20)
    finally:
        second.kill()
    assert second.returncode == 0, err
    assert [json.loads(line)["body"] for line in out.splitlines()] == [{"n": "fresh"}]
    assert "rejected stale on replay.a" in err


async def test_a_new_subscription_refuses_what_the_one_before_it_accepted(make_bus) -> None:
    sender = await make_bus("sender")
    receiver = await make_bus("receiver")
    sub = await receiver.subscribe("replay.bus")
    await receiver.flush()  # the server has the subscription before anything is sent
    frame = sender.sealer.seal("replay.bus", {"n": 1})
    await sender.publish_frame("replay.bus", frame)
    first = await sub.next(5)
    assert first.body == {"n": 1}
    await sub.unsubscribe()
    # The floor has millisecond resolution and admits a frame stamped in the very
    # millisecond a receiver starts (no restart is that fast): start the next one later.
    await wait_until(lambda: time.time() * 1000 >= first.ts_ms + 2, what="the next millisecond")

    again = await receiver.subscribe("replay.bus")  # a restarted receiver: a fresh window
    await receiver.flush()
    await sender.publish_frame("replay.bus", frame)
    await sender.publish("replay.bus", {"n": 2})
    assert (await again.next(5)).body == {"n": 2}
    assert receiver.stats.counts["stale"] == 1
