"""Helpers of the VSM tests: a cluster of role agents as child processes (the demo's six
unless told), tasks run through S3 from the test, each agent's viability, and the
cluster's audit log of one task."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from agents import AgentClient, read_cluster_log
from agents.cluster.topology import DEMO_AGENTS
from agents.vsm.tasks import CycleResult, TaskSpec
from amcp import Bus
from tests.support.agents import Cluster, view_of
from tests.support.waiting import wait_until


def vsm_env(**extra: str) -> dict[str, str]:
    """The agents' environment: quick adaptation rounds, plus `extra`."""
    return {**os.environ, "AMCP_VSM_INTERVAL": "0.1", **extra}


async def start_vsm(
    cluster: Cluster,
    bus: Bus,
    agents: Iterable[tuple[str, str]] = DEMO_AGENTS,
    *,
    env: dict[str, str] | None = None,
    voters: Iterable[str] = (),
    args: Mapping[str, list[str]] | None = None,
) -> dict[str, Any]:
    """Spawn the agents (with their own `args` if any) and wait until each sees all of
    them alive."""
    voting = set(voters)
    own = args or {}
    procs = {
        agent_id: cluster.spawn(
            role,
            agent_id,
            env=env or vsm_env(),
            args=[*(["--voter"] if agent_id in voting else []), *own.get(agent_id, [])],
        )
        for role, agent_id in agents
    }
    client = AgentClient(bus)

    async def all_alive() -> bool:
        for agent_id in procs:
            view = await view_of(client, agent_id)
            if view is None or {m.id for m in view.members if m.liveness == "alive"} != set(procs):
                return False
        return True

    await wait_until(all_alive, 30, what=f"{len(procs)} agents seeing each other")
    return procs


async def run_task(bus: Bus, work: Path, timeout: float = 60, **fields: Any) -> CycleResult:
    spec = TaskSpec(cwd=str(work), timeout=fields.pop("step_timeout", 20), **fields)
    result = await AgentClient(bus).call("s3", "run-task", spec.model_dump(), timeout=timeout)
    return CycleResult.model_validate(result.output)


async def viability_of(bus: Bus, agent_id: str) -> dict[str, Any]:
    return (await AgentClient(bus).call(agent_id, "viability", timeout=2)).output


async def adaptations(bus: Bus, agent_id: str = "s3-a") -> set[str]:
    found = (await viability_of(bus, agent_id))["adaptations"]
    return {f"{a['kind']}:{a['target']}" if a["target"] else a["kind"] for a in found}


async def task_log(bus: Bus, task_id: str) -> list[dict[str, Any]]:
    """The cluster log's entries that name `task_id`, in stream order."""
    entries, rejected = await read_cluster_log(bus)
    assert not rejected
    return [e.record for e in entries if e.record.get("task") == task_id]
