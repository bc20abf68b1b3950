"""Helpers of the agent integration tests: agents as child processes in a fresh cluster
namespace (the `agent_cluster` fixture), each with an identity in the cluster's roster
unless told otherwise, and each agent's own view of the members."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from agents import AgentClient, AgentProcess, ClusterView
from agents.cluster.identities import AgentIdentities, roles_of
from amcp import NatsServer

HEARTBEAT = 0.2


class Cluster:
    """Agent processes in one cluster namespace; all killed at the end of the test."""

    def __init__(self, server: NatsServer, keyring: Path, workdir: Path) -> None:
        self.name = f"t{uuid.uuid4().hex[:8]}"
        self.server = server
        self.keyring = keyring
        self.workdir = workdir
        self.procs: list[AgentProcess] = []
        self.identities = AgentIdentities(workdir)

    def spawn(
        self, role: str, agent_id: str, *, provision: bool = True, **kwargs: Any
    ) -> AgentProcess:
        """Start an agent; with `provision` (the default, as on every cluster amcp makes)
        and no `identity` given, it signs with a key of its own in the cluster's roster,
        which every agent checks."""
        kwargs.setdefault("heartbeat", HEARTBEAT)
        if provision and "identity" not in kwargs:
            if not self.identities.path(agent_id).exists():  # a restart keeps its key
                voter = "--voter" in kwargs.get("args", ())
                self.identities.provision([(agent_id, roles_of(role, voter))])
            kwargs["identity"] = self.identities.path(agent_id)
            kwargs.setdefault("roster", self.identities.roster)
        proc = AgentProcess(
            role,
            agent_id,
            nats=self.server.url,
            keyring=self.keyring,
            cluster=self.name,
            log_dir=self.workdir,
            **kwargs,
        )
        self.procs.append(proc.start())
        return proc

    def env(self, base: dict[str, str]) -> dict[str, str]:
        """`base` for CLI commands into this cluster, checking identities once any exist."""
        roster = self.identities.roster
        return {**base, "AMCP_CLUSTER": self.name} | (
            {"AMCP_ROSTER": str(roster)} if roster.exists() else {}
        )

    def close(self) -> None:
        for proc in self.procs:
            proc.close()


async def view_of(client: AgentClient, agent_id: str) -> ClusterView | None:
    """The members as `agent_id` sees them, or None if it does not answer (yet)."""
    try:
        result = await client.call(agent_id, "members", timeout=1.0)
    except Exception:
        return None
    return ClusterView.model_validate(result.output)


def liveness(view: ClusterView | None) -> dict[str, str]:
    return {} if view is None else {m.id: m.liveness for m in view.members}
