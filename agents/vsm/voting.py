"""Voting: the extension that makes an agent a voter on critical actions and, where it
declares so, the executor of some of them (consensus.VoterService on the agent's bus and
replica).

- Voters: every agent of a role that always votes (S5: PolicyRole.voter), others with
  `--voter` (AgentConfig.voter, which load_extensions sets for the former). A voter
  scores each proposal from its own view: the registered voters and how many it sees
  alive, its own failure rate, the age of the heartbeats it relies on, cluster health.
- Executors: `executes` maps an action to one of the agent's tools (amcp-agent
  `--executes ACTION=TOOL`). The map is published in the member record
  (`extra.executes`), where proposers find the executor of an action. A committed action
  runs that tool once, with the proposal's payload as its input, inside the agent's pool.

Votes and executions go to the audit log (votes as lazy entries: many ballots' entries
share one stream frame, written up to 50 ms later, so a ballot never waits for JetStream
and costs no stream write of its own). Registered by the entry point
`[project.entry-points."amcp.agent_extensions"] voter = "agents.vsm.voting:extension_for"`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from agents.runtime.audit import AuditEvent
from agents.runtime.config import AgentConfig
from agents.runtime.errors import AgentError
from agents.runtime.extension import Extension
from agents.runtime.handle import AgentHandle
from agents.runtime.liveness import Liveness
from amcp.familycounts import family_of
from consensus import (
    Decided,
    Execution,
    Executor,
    Proposal,
    Scorer,
    Vote,
    VotePolicy,
    VoterContext,
    VoterService,
    VoterSettings,
    VoterState,
)
from crdt.store import ContextStore

__all__ = ["EXECUTES", "VotingExtension", "extension_for"]

EXECUTES = "executes"  # AgentConfig.extra / MemberRecord.extra key: {action: tool}
VIEW_TTL = 0.1  # seconds a voter reuses its view of the cluster


def extension_for(config: AgentConfig) -> VotingExtension | None:
    """The voting extension for voters and declared executors; None for other agents."""
    if not config.voter and not config.extra.get(EXECUTES):
        return None
    return VotingExtension(config)


def _proposal_fields(proposal: Proposal) -> dict[str, Any]:
    return {"proposal": proposal.id, "action": proposal.action, "proposer": proposal.proposer}


class VotingExtension(Extension):
    """Votes (if the agent is a voter) and executes the actions it declares."""

    name = "consensus"

    def __init__(
        self,
        config: AgentConfig,
        *,
        executes: Mapping[str, str] | None = None,
        scorer: Scorer | None = None,
        policy: VotePolicy | None = None,
        settings: VoterSettings | None = None,
    ) -> None:
        self.config = config
        if executes is not None:  # published in the member record the agent joins with
            config.extra[EXECUTES] = dict(executes)
        declared = config.extra.get(EXECUTES) or {}
        if not isinstance(declared, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) and k and v for k, v in declared.items()
        ):
            raise AgentError(f"{EXECUTES} must map action names to tool names")
        self.executes: dict[str, str] = dict(declared)
        self.scorer = scorer
        self.policy = policy
        self.settings = settings
        self.agent: AgentHandle | None = None
        self.service: VoterService | None = None
        self._view: VoterContext | None = None
        self._view_at = 0.0
        self._span_attributes: dict[str, Any] = {}

    async def start(self, agent: AgentHandle) -> None:
        for action, tool_name in self.executes.items():
            if not agent.has_tool(tool_name):
                raise AgentError(
                    f"agent {agent.id} cannot execute {action}: it has no tool {tool_name!r}"
                )
        assert isinstance(agent.store, ContextStore)
        self.agent = agent
        state = VoterState(agent.id, scorer=self.scorer, policy=self.policy, settings=self.settings)
        self.service = VoterService(
            agent.bus,
            agent.store,
            context=self._context,
            vote=self.config.voter,
            executes=self.executes,
            run=self._run,
            state=state,
            on_vote=self._audit_vote,
            on_execution=self._audit_execution,
        )
        # The span of a ballot or an execution: work on a proposal received on this family.
        self._span_attributes = {"family": family_of(self.service.subjects.propose)}
        await self.service.start()

    async def stop(self) -> None:
        if self.service is not None:
            await self.service.stop()

    def status(self) -> dict[str, Any]:
        return {} if self.service is None else self.service.status()

    # -- what the service asks of the agent ---------------------------------------------

    def _context(self, proposal: Proposal) -> VoterContext:
        """This agent's view: voters it sees alive, its failure rate, heartbeat ages.
        The view is recomputed at most every VIEW_TTL seconds (it changes with
        heartbeats, not with each proposal)."""
        agent = self.agent
        assert agent is not None
        # called once per proposal this voter weighs, before its ballot: pre_vote observes
        if agent.hooks.wants("pre_vote"):
            agent.hooks.notify("pre_vote", **_proposal_fields(proposal))
        now = time.monotonic()
        if self._view is None or now - self._view_at > VIEW_TTL:
            self._view, self._view_at = self._cluster_view(agent), now
        return self._view.evolve(now_ms=time.time_ns() // 1_000_000)

    @staticmethod
    def _cluster_view(agent: AgentHandle) -> VoterContext:
        members = agent.members()
        alive = [m for m in members if m.record.id == agent.id or m.liveness is Liveness.ALIVE]
        voters = [m for m in members if m.record.voter]
        live_voters = [m for m in alive if m.record.voter]
        ages = [m.heartbeat_age for m in live_voters if m.heartbeat_age is not None]
        calls = agent.calls
        finished = calls["ok"] + calls["failed"]
        return VoterContext(
            role=agent.role,
            members=max(1, len(voters)),
            live=min(max(1, len(voters)), len(live_voters)),
            now_ms=0,
            error_rate=calls["failed"] / finished if finished else 0.0,
            data_age_s=max(ages, default=0.0),
            cluster_health=len(alive) / len(members) if members else 1.0,
        )

    async def _run(self, executor: Executor, decided: Decided) -> Any:
        """Run the declared tool once, with the proposal's payload as its input."""
        assert self.agent is not None
        return await self.agent.execute(
            executor.tool,
            decided.proposal.to_wire()["payload"],
            caller=decided.proposal.proposer,
            call_id=decided.id,
        )

    async def _audit_vote(self, proposal: Proposal, vote: Vote) -> None:
        assert self.agent is not None
        if self.agent.hooks.wants("post_vote"):
            self.agent.hooks.notify(
                "post_vote",
                **_proposal_fields(proposal),
                choice=str(vote.choice),
                combined=vote.combined,
                reason=vote.reason,
            )
        await self.agent.record(
            AuditEvent.VOTE,
            lazy=True,  # one per ballot: many share a stream frame, off the ballot's path
            span_attributes=self._span_attributes,
            proposal=proposal.id,
            action=proposal.action,
            proposer=proposal.proposer,
            choice=str(vote.choice),
            combined=vote.combined,
            scores=vote.scores.to_wire(),
            reason=vote.reason,
        )

    async def _audit_execution(self, execution: Execution) -> None:
        assert self.agent is not None
        await self.agent.record(
            AuditEvent.DECISION,
            span_attributes=self._span_attributes,
            proposal=execution.proposal_id,
            executed=str(execution.state),
            tool=execution.tool,
            ms=max(0, execution.finished_ms - execution.started_ms),
            error=execution.error,
        )
