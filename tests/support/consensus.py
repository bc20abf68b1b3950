"""Helpers of the consensus integration tests: real Agents (runtime, replicated member
list, the voting extension) in this process, each on its own Bus, in a fresh cluster
namespace (the `members` fixture); coordinators on their own buses; a tool that counts
its runs."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from pydantic import BaseModel

from agents import Agent, AgentConfig, CallContext, Tool, tool
from agents.vsm.voting import VotingExtension
from amcp import Bus, Keyring
from consensus import Coordinator
from tests.support.waiting import wait_until

HEARTBEAT = 0.2


class ApplyIn(BaseModel):
    seconds: float = 0.0
    targets: list[str] = []


class ApplyOut(BaseModel):
    runs: int


def counting_tool(runs: list[str]) -> Tool:
    """A tool `apply` that appends its call id to `runs` (after `seconds`)."""

    @tool("apply")
    async def apply(args: ApplyIn, ctx: CallContext) -> ApplyOut:
        """Apply a change (counts its runs)."""
        await asyncio.sleep(args.seconds)
        runs.append(ctx.call_id)
        return ApplyOut(runs=len(runs))

    return apply


class Members:
    """Agents and coordinators of one test, in one fresh cluster namespace."""

    def __init__(self, url: str, keyring: Keyring) -> None:
        self.url = url
        self.keyring = keyring
        self.cluster = f"c{uuid.uuid4().hex[:8]}"
        self.agents: dict[str, Agent] = {}
        self._buses: list[Bus] = []
        self._coordinators: list[Coordinator] = []

    async def bus(self, sender: str, url: str | None = None, ring: Keyring | None = None) -> Bus:
        bus = await Bus.connect(
            url or self.url, keyring=ring or self.keyring, sender=sender, cluster=self.cluster
        )
        self._buses.append(bus)
        return bus

    async def add(
        self,
        agent_id: str,
        *,
        role: str = "s5",
        voter: bool = True,
        tools: tuple[Tool, ...] = (),
        url: str | None = None,
        **voting: Any,
    ) -> Agent:
        """Start an agent with the voting extension (`voting`: its keyword arguments)."""
        config = AgentConfig(role=role, agent_id=agent_id, heartbeat=HEARTBEAT, voter=voter)
        agent = Agent(
            await self.bus(agent_id, url), config, extensions=[VotingExtension(config, **voting)]
        )
        for t in tools:
            agent.add_tool(t)
        await agent.start()
        self.agents[agent_id] = agent
        return agent

    async def crash(self, agent_id: str) -> None:
        """The agent stops answering and stays a member, as after a crash."""
        await self.agents[agent_id].fail(RuntimeError("crashed by the test"))

    async def coordinator(
        self,
        sender: str = "proposer",
        url: str | None = None,
        voters: int | None = None,
        **options: Any,
    ) -> Coordinator:
        """A coordinator on its own bus, once its replica sees `voters` (default: all);
        `options` go to Coordinator.open."""
        coordinator = await Coordinator.open(await self.bus(sender, url), **options)
        self._coordinators.append(coordinator)
        expected = sum(a.config.voter for a in self.agents.values()) if voters is None else voters
        await wait_until(
            lambda: len(coordinator.voters()) == expected, 10, what=f"{expected} voters"
        )
        return coordinator

    async def close(self) -> None:
        for coordinator in self._coordinators:
            await coordinator.close()
        for agent in self.agents.values():
            if not agent.lifecycle.final:
                await agent.stop()
        for bus in self._buses:
            await bus.close()
