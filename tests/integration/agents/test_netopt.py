"""The traffic analyser tunes agents' buses in the running system (issue 13 point 1):
agents batch adaptively per subject family, ballots and replies skip the batches, `amcp
status --json` shows each agent's policies and request timeouts, and an idempotent call is
retried past a lost request while any other call is not."""

from __future__ import annotations

from typing import Any

import pytest

from agents import AgentClient
from agents.runtime.subjects import ANY, ok_reply
from amcp.errors import NoResponders, RequestTimeout
from tests.support.agents import view_of
from tests.support.cli import amcp_async, amcp_json
from tests.support.waiting import wait_until


def _network(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["id"]: m["stats"].get("network") or {} for m in status["members"]}


async def test_agents_batch_adaptively_ballots_and_replies_skip_batches_and_status_shows_it(
    agent_cluster, make_bus, cli_env
) -> None:
    adaptive = ["--batching", "adaptive"]  # off by default: it did not pay in the soak
    agent_cluster.spawn("s5", "v1", args=adaptive)
    agent_cluster.spawn("s1", "w1", capabilities=["echo"], args=adaptive)
    client = AgentClient(await make_bus("caller", cluster=agent_cluster.name))
    for agent_id in ("v1", "w1"):
        await wait_until(lambda i=agent_id: _running(client, i), 20, what=f"{agent_id} running")
    assert (await client.call("w1", "echo", {"text": "hi"})).output == {"text": "hi"}
    env = agent_cluster.env(cli_env)
    coordinated = await amcp_async("coordinate", "--action", "restart", "--json", env=env)
    assert coordinated.returncode == 0, coordinated.stderr

    ballots = f"amcp.{agent_cluster.name}.vote.ballot"
    heartbeats = f"amcp.{agent_cluster.name}.agents.hb"
    seen: dict[str, dict[str, Any]] = {}

    async def analysed() -> bool:  # 6.4 s of heartbeats, then the next evaluation
        seen.update(_network(await amcp_json("status", env=env)))
        return all(any(f["family"] == heartbeats for f in seen[i]["families"]) for i in seen)

    await wait_until(analysed, 30, interval=0.5, what="each agent's heartbeat family evaluated")
    v1, w1 = seen["v1"], seen["w1"]
    assert v1["batching"] == w1["batching"] == "adaptive"
    family = next(f for f in w1["families"] if f["family"] == heartbeats)
    # Far too slow for any class to linger: natural batching, decided without the spectral
    # analyser (so no class), at the rate the heartbeats run.
    assert family["class"] is None and family["linger_ms"] == 0 and family["max_messages"] >= 1
    assert 0 < family["rate"] < 50
    # Sent at once, each in a frame of its own: counted past the batches, never sampled in one.
    assert v1["immediate"].get(ballots, 0) >= 1
    assert all(f["family"] != ballots for f in v1["families"])
    assert w1["immediate"].get("_INBOX", 0) >= 2  # the echo's reply and the status calls'
    for net in (v1, w1):  # every agent asked once whether its id was taken
        assert net["rto"] and all(r["rto_ms"] >= 100 for r in net["rto"].values())

    text = await amcp_async("status", env=env)
    assert text.returncode == 0, text.stderr
    assert "batching adaptive:" in text.stdout and f"{heartbeats} slow " in text.stdout
    assert "request timeouts:" in text.stdout


async def _running(client: AgentClient, agent_id: str) -> bool:
    view = await view_of(client, agent_id)
    return view is not None and any(m.id == agent_id and m.state == "running" for m in view.members)


class DropsFirst:
    """A stand-in agent on the `any` group that loses the first request it gets."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def __call__(self, msg) -> None:
        self.seen.append(msg.body["tool"])
        if len(self.seen) > 1:
            view = {"cluster": "c", "observer": "fake", "members": []}
            await msg.respond(ok_reply("fake", view))


@pytest.mark.parametrize("idempotent", [True, False])
async def test_an_idempotent_call_is_retried_past_a_lost_request_and_no_other(
    make_bus, idempotent: bool
) -> None:
    responder = await make_bus("fake", cluster="retry", batching="adaptive")
    client = AgentClient(await make_bus("caller", cluster="retry", batching="adaptive"))
    drops = DropsFirst()
    await responder.subscribe(client.subjects.any, drops, queue="any")
    await responder.flush()
    if idempotent:  # members is read-only: a lost request is sent again
        view = await client.members()
        assert view.observer == "fake" and drops.seen == ["members", "members"]
        rto = client.bus.rtos.peek(f"amcp.retry.agents.{ANY}")  # its family's own timeout
        assert rto is not None and rto.srtt is not None  # each attempt has its own inbox
    else:  # remove-member changes the member list: sent once, whatever happens
        with pytest.raises(RequestTimeout):
            await client.call("any", "remove-member", {"id": "x"}, timeout=1.5)
        await responder.flush()
        assert drops.seen == ["remove-member"]


async def test_no_responders_is_answered_at_once_and_locks_no_caller_out(make_bus) -> None:
    """Polling `members` while no agent runs yet (what `amcp members` and a starting
    cluster do): each poll fails at once with NoResponders, never CircuitOpen, and the
    first poll after an agent starts gets its answer."""
    client = AgentClient(await make_bus("caller", cluster="poll", batching="adaptive"))
    for _ in range(8):  # past the breaker's five failures
        with pytest.raises(NoResponders):
            await client.members()
    assert client.bus.breakers.peek(client.subjects.any).state == "closed"
    responder = await make_bus("fake", cluster="poll", batching="adaptive")
    drops = DropsFirst()
    drops.seen.append("skip")  # answers every request
    await responder.subscribe(client.subjects.any, drops, queue="any")
    await responder.flush()
    assert (await client.members()).observer == "fake"
