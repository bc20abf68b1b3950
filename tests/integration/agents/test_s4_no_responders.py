"""S4 watches the cluster's traffic without swallowing NATS "no responders" (issue 13,
point 2): with an S4 running, a call to an id no agent has says so at once, requests
nobody serves fail at once instead of waiting their timeout, and S4 still sees the traffic
(heartbeats on the bus, calls as the agents report them)."""

from __future__ import annotations

import time

import pytest

from agents import AgentClient
from agents.runtime.client import UnknownAgent
from amcp.errors import NoResponders
from tests.support.agents import view_of
from tests.support.cli import amcp_async
from tests.support.waiting import wait_until

SLOW = 20.0  # the timeout each request is given; answers must come long before it


async def test_with_s4_running_unknown_targets_are_answered_at_once(
    agent_cluster, make_bus, cli_env
) -> None:
    agent_cluster.spawn("s4", "s4-a")
    agent_cluster.spawn("s2", "s2-a", capabilities=["echo"])
    bus = await make_bus("tester", cluster=agent_cluster.name)
    client = AgentClient(bus)
    for agent_id in ("s4-a", "s2-a"):
        await wait_until(lambda i=agent_id: _up(client, i), 20, what=f"{agent_id} up")
    env = agent_cluster.env(cli_env)

    began = time.monotonic()
    done = await amcp_async(
        "call", "nobody", "echo", '{"text": "x"}', "--timeout", str(SLOW), env=env
    )
    took = time.monotonic() - began
    assert done.returncode == 3, done.stderr
    assert f"no agent has id 'nobody' in cluster {agent_cluster.name}" in done.stderr
    assert "members: s2-a, s4-a" in done.stderr and "amcp-agent" not in done.stderr
    assert took < SLOW / 2, took

    with pytest.raises(UnknownAgent, match="no agent has id 'ghost'"):
        await client.call("ghost", "echo", {"text": "x"}, timeout=SLOW)
    began = time.monotonic()
    with pytest.raises(NoResponders, match="no live s1 agent"):
        await client.call("s1", "echo", {"text": "x"}, timeout=SLOW)
    for area in (("ctx", "boot", "durable"), ("ctx", "rep", "nobody")):
        with pytest.raises(NoResponders):
            await bus.request(bus.subjects.area(*area), {}, timeout=SLOW, kind="ctx")
    assert time.monotonic() - began < SLOW / 2

    # A ctx command with no durable replica: its bootstrap requests fail at once.
    began = time.monotonic()
    done = await amcp_async("ctx", "dump", "--timeout", str(SLOW), env=env)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - began < SLOW / 2

    # S4 still sees the traffic: heartbeats on the bus, calls from the agents' reports.
    for n in range(40):
        await client.call("s2-a", "echo", {"text": str(n)})

    async def sees_calls() -> bool:
        picture = (await client.call("s4-a", "traffic")).output
        families = {f["family"]: f for f in picture["families"]}
        calls = families.get(f"amcp.{agent_cluster.name}.agents.call")
        heartbeats = families.get(f"amcp.{agent_cluster.name}.agents.hb")
        return bool(calls and calls["rate"] > 0 and calls["source"] == "heartbeats") and bool(
            heartbeats and heartbeats["source"] == "bus"
        )

    await wait_until(sees_calls, 15, interval=0.2, what="S4 to see calls and heartbeats")


async def _up(client: AgentClient, agent_id: str) -> bool:
    return await view_of(client, agent_id) is not None
