"""Agents in this process on a real nats-server: tools over request/reply, validation
errors, the bounded pool, role load balancing, draining, extensions, metrics."""

from __future__ import annotations

import asyncio
import os
import time
import urllib.request
from collections import Counter
from typing import Any

import pytest
from pydantic import BaseModel

from agents import (
    Agent,
    AgentBusy,
    AgentClient,
    CallContext,
    DuplicateAgent,
    Extension,
    LifecycleState,
    ToolFailed,
    ToolInputError,
    UnknownTool,
    read_cluster_log,
    tool,
)
from agents.runtime.catalog import Text
from amcp.errors import NoResponders
from tests.support.cli import amcp_async
from tests.support.waiting import wait_until


class Boom(BaseModel):
    why: str


@tool(description="Always raises.")
async def explode(args: Boom, ctx: CallContext) -> Text:
    raise RuntimeError(args.why)


async def test_a_call_returns_the_output_and_bad_input_the_validation_error(
    start_agent, client: AgentClient
) -> None:
    agent = await start_agent(capabilities=("echo",))
    result = await client.call(agent.id, "echo", {"text": "hi"})
    assert (result.agent, result.output) == (agent.id, {"text": "hi"})

    started = time.monotonic()
    with pytest.raises(ToolInputError) as err:
        await client.call(agent.id, "echo", {"txt": "hi"})
    assert time.monotonic() - started < 2.5  # answered, not left to time out (5 s)
    assert err.value.agent == agent.id
    assert {d["type"] for d in err.value.details} == {"missing"}
    assert err.value.details[0]["loc"] == ["text"]

    with pytest.raises(UnknownTool, match="echo"):
        await client.call(agent.id, "nope", {})
    assert agent.calls == {"ok": 1, "failed": 0, "refused": 1, "invalid": 1}


async def test_bad_input_through_amcp_call_exits_2_with_the_reasons(
    start_agent, cli_env: dict[str, str], cluster_name: str
) -> None:
    agent = await start_agent(capabilities=("echo",))
    env = {**cli_env, "AMCP_CLUSTER": cluster_name}
    bad = await amcp_async("call", agent.id, "echo", '{"text": 5}', env=env, timeout=30)
    assert bad.returncode == 2, bad.stderr
    assert "invalid input for echo: text: Input should be a valid string" in bad.stderr
    good = await amcp_async("call", "s1", "echo", '{"text": "ok"}', "--json", env=env, timeout=30)
    assert good.returncode == 0, good.stderr
    assert '"output": {"text": "ok"}' in good.stdout


async def test_describe_publishes_schemas_and_examples(start_agent, client) -> None:
    agent = await start_agent(capabilities=("echo", "sleep", "not-a-tool"))
    described = await client.describe(agent.id)
    specs = {s["name"]: s for s in described.tools}
    assert set(specs) == {"describe", "members", "remove-member", "echo", "sleep"}
    assert specs["sleep"]["input_schema"]["properties"]["seconds"]["maximum"] == 3600
    assert specs["echo"]["examples"] == [{"input": {"text": "hello"}, "output": {"text": "hello"}}]
    view = await client.members()
    assert view.members[0].capabilities == ["echo", "sleep", "not-a-tool"]


async def test_a_tool_that_raises_fails_the_call_and_the_log_says_so(
    start_agent, client, make_bus, cluster_name
) -> None:
    agent = await start_agent(tools=[explode])
    with pytest.raises(ToolFailed, match="RuntimeError: on purpose"):
        await client.call(agent.id, "explode", {"why": "on purpose"})
    reader = await make_bus("reader", cluster=cluster_name)

    async def logged() -> list[str]:
        entries, _ = await read_cluster_log(reader, agent=agent.id)
        return [e.event for e in entries]

    await wait_until(lambda: _has(logged, "task_failed"), 10, what="task_failed in the log")
    assert await logged() == ["started", "task_received", "task_failed"]


async def _has(read, event: str) -> bool:
    return event in await read()


async def test_the_pool_refuses_work_when_full(start_agent, client) -> None:
    agent = await start_agent(capabilities=("sleep",), pool_size=1, queue_size=1)
    started = time.monotonic()
    calls = [
        asyncio.ensure_future(client.call(agent.id, "sleep", {"seconds": 1.0})) for _ in range(3)
    ]
    done, _ = await asyncio.wait(calls, return_when=asyncio.FIRST_COMPLETED)
    refused = done.pop()
    assert isinstance(refused.exception(), AgentBusy)  # first to finish: the refusal
    assert time.monotonic() - started < 0.9  # refused at once, not after waiting
    assert "1 calls running and 1 waiting" in str(refused.exception())
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert sum(isinstance(r, AgentBusy) for r in results) == 1
    assert sum(not isinstance(r, Exception) for r in results) == 2
    # queries bypass the pool: the agent answers about itself while it is full
    busy = asyncio.ensure_future(client.call(agent.id, "sleep", {"seconds": 0.5}))
    await wait_until(lambda: agent.pool.running == 1, 10, what="a running call")
    assert (await client.members()).members[0].id == agent.id
    await busy
    assert agent.calls["refused"] == 1


async def test_calls_to_a_role_are_balanced_over_its_live_agents(start_agent, client) -> None:
    first = await start_agent("s1", capabilities=("echo",))
    second = await start_agent("s1", capabilities=("echo",))
    await start_agent("s2", capabilities=("echo",))  # another role: never picked
    answered = Counter(
        [(await client.call("s1", "echo", {"text": str(i)})).agent for i in range(40)]
    )
    assert set(answered) == {first.id, second.id}
    assert min(answered.values()) >= 5
    await second.stop()
    after = {(await client.call("s1", "echo", {"text": "x"})).agent for _ in range(10)}
    assert after == {first.id}


async def test_stop_drains_in_flight_work_then_leaves(start_agent, client) -> None:
    agent = await start_agent(capabilities=("sleep",))
    other = await start_agent("s2")
    call = asyncio.ensure_future(client.call(agent.id, "sleep", {"seconds": 0.5}))
    await wait_until(lambda: agent.pool.running == 1, 10, what="the call to start")
    stopping = asyncio.ensure_future(agent.stop())
    await wait_until(lambda: agent.state is LifecycleState.DRAINING, 10, what="draining")
    with pytest.raises(NoResponders):  # it takes no new work
        await client.call(agent.id, "sleep", {"seconds": 0})
    assert (await call).output == {"slept": 0.5}  # but finishes what it had
    await stopping
    assert agent.state is LifecycleState.STOPPED
    await wait_until(
        lambda: agent.id not in {m.record.id for m in other.members()},
        10,
        what="the leave to reach the other agent",
    )


async def test_a_second_agent_with_a_live_id_is_refused(start_agent) -> None:
    agent = await start_agent()
    with pytest.raises(DuplicateAgent):
        await start_agent(agent_id=agent.id)


class Probe(Extension):
    """An extension as a role or a voter would be: a tool, a status section, a loop."""

    name = "probe"

    def __init__(self) -> None:
        self.events: list[str] = []
        self.crash = asyncio.Event()

    def tools(self):
        @tool("probe.ping", pooled=False, audited=False)
        async def ping(args: Text, ctx: CallContext) -> Text:
            """Answer from the extension."""
            return Text(text=f"pong {args.text}")

        return [ping]

    async def start(self, agent: Agent) -> None:
        self.events.append(f"start {agent.state}")
        agent.spawn(self._loop(), "probe")

    async def _loop(self) -> None:
        await self.crash.wait()
        raise RuntimeError("probe loop died")

    async def stop(self) -> None:
        self.events.append("stop")

    def status(self) -> dict[str, Any]:
        return {"events": len(self.events)}


async def test_extensions_add_tools_status_and_fail_the_agent_when_their_loop_dies(
    start_agent, client
) -> None:
    probe = Probe()
    agent = await start_agent("s5", extensions=[probe], voter=True)
    assert probe.events == ["start starting"]
    assert (await client.call("s5", "probe.ping", {"text": "x"})).output == {"text": "pong x"}
    view = await client.members()
    assert view.extensions == {"probe": {"events": 1}}
    assert view.members[0].voter  # the config says so (no role here to require it)
    probe.crash.set()
    assert await asyncio.wait_for(agent.run(asyncio.Event()), 5) == 1
    assert agent.state is LifecycleState.FAILED and probe.events[-1] == "stop"
    assert agent.id in agent.membership.records()  # a failed agent stays a member


async def test_metrics_are_served_for_prometheus(start_agent, client) -> None:
    agent = await start_agent(capabilities=("echo",), metrics_port=0)
    await client.call(agent.id, "echo", {"text": "m"})
    port = (await client.members()).members[0].metrics_port
    assert port == agent.metrics.port and port

    def scrape() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            return resp.read().decode()

    text = await asyncio.to_thread(scrape)
    assert 'amcp_agent_tool_calls_total{outcome="ok",tool="echo"} 1.0' in text
    assert 'amcp_agent_state{amcp_agent_state="running"} 1.0' in text
    assert 'amcp_bus_rejected_frames_total{reason="replay"} 0.0' in text
    assert "amcp_agent_pool_running 0.0" in text
    assert os.getpid() == (await client.members()).members[0].pid


async def test_a_running_agent_removed_from_the_list_joins_again(start_agent) -> None:
    agent = await start_agent()
    other = await start_agent("s2")
    await wait_until(lambda: agent.id in other.membership.records(), 10, what="both members")
    await other.membership.remove(agent.id)  # as if removed on a false suspicion
    await wait_until(lambda: agent.id in other.membership.records(), 10, what="the rejoin")
    assert other.membership.records()[agent.id].state == "running"
