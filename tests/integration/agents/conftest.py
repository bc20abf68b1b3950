"""Fixtures of the agent integration tests: agents in this process, and a client."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from agents import Agent, AgentClient, AgentConfig
from tests.support.agents import HEARTBEAT


@pytest.fixture
async def start_agent(make_bus, cluster_name: str) -> AsyncIterator[Callable[..., Any]]:
    started: list[Agent] = []

    async def factory(
        role: str = "s1",
        agent_id: str | None = None,
        *,
        tools=(),
        extensions=(),
        bus_options: dict[str, Any] | None = None,
        **config: Any,
    ) -> Agent:
        agent_id = agent_id or f"{role}-{uuid.uuid4().hex[:6]}"
        bus = await make_bus(agent_id, cluster=cluster_name, **(bus_options or {}))
        agent = Agent(
            bus,
            AgentConfig(role=role, agent_id=agent_id, heartbeat=HEARTBEAT, **config),
            extensions=list(extensions),
        )
        for t in tools:
            agent.add_tool(t)
        await agent.start()
        started.append(agent)
        return agent

    yield factory
    for agent in reversed(started):
        await agent.stop()


@pytest.fixture
async def client(make_bus, cluster_name: str) -> AgentClient:
    return AgentClient(
        await make_bus(f"cli-{uuid.uuid4().hex[:6]}", cluster=cluster_name), timeout=5.0
    )
