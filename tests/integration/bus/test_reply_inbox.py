"""A signed request whose reply-to is not an inbox gets no reply: an agent would otherwise
publish its answer, under its own name and NATS permissions, on a subject the caller
chose (a vote proposal for an S1 that may not propose). Real agent, real nats-server."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from agents import Agent, AgentClient, AgentConfig
from agents.runtime.subjects import AgentSubjects, call_request
from amcp import Message
from amcp.message import BAD_REPLY, REPLY_HEADER
from tests.support.waiting import wait_until


async def test_a_reply_to_outside_the_inboxes_is_refused_counted_and_never_published(
    make_bus: Callable[..., Any],
) -> None:
    cluster = f"t{uuid.uuid4().hex[:8]}"
    agent = Agent(
        await make_bus("s5-a", cluster=cluster),
        AgentConfig(role="s5", agent_id="s5-a", capabilities=("echo",)),
    )
    await agent.start()
    try:
        attacker = await make_bus("s1-x", cluster=cluster)
        target = attacker.subjects.area("vote", "propose")
        landed: list[Message] = []
        watcher = await make_bus("watcher", cluster=cluster)
        await watcher.subscribe(target, landed.append)
        await watcher.flush()

        call = AgentSubjects(attacker.subjects).target(agent.id)
        body = call_request("echo", {"text": "a proposal, signed by s5"})
        await attacker.publish(call, body, headers={REPLY_HEADER: target})
        await wait_until(
            lambda: agent.bus.rejections[BAD_REPLY] == 1, 5, what="the refused reply-to"
        )

        # the agent still answers genuine requests, and the refused one never went out
        client = AgentClient(await make_bus("cli", cluster=cluster), timeout=5.0)
        assert (await client.call(agent.id, "echo", {"text": "hi"})).output == {"text": "hi"}
        await agent.bus.flush()
        await watcher.flush()
        assert landed == []
        assert agent.bus.rejections[BAD_REPLY] == 1
    finally:
        await agent.stop()
