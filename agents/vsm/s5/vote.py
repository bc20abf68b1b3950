"""S5's quorum vote on a critical action: the one place the task loop meets consensus.

`QuorumVote` is a consensus Coordinator on the S5 agent's bus and CRDT replica. `put`
proposes an action to the registered voters (members whose record says `voter`, crashed
ones included, so a minority can never commit); the voters are hosted by the agents
themselves (agents.vsm.voting), score the proposal on five dimensions and sign their ballots;
the decision is consensus's deterministic tally, early when it is fixed, NO_QUORUM at the
deadline. The loop's own S1 agents carry out a committed task, so the policy's action
names (deploy, restart, ...) should not also be declared with `--executes`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from agents.runtime.audit import AuditEvent
from amcp.familycounts import family_of
from consensus import Coordinator, Decision, Outcome

if TYPE_CHECKING:
    from agents.runtime.handle import AgentHandle

__all__ = ["QuorumVote", "describe_decision", "record_now"]


async def record_now(agent: AgentHandle, event: str, **fields: Any) -> None:
    """An audit entry that is on the connection to the cluster log before the caller goes
    on: what the agent sends next (a reply, a call) reaches the stream after it, so the
    log keeps cause before effect across agents."""
    await agent.record(event, **fields)
    await agent.flush_audit()


class QuorumVote:
    """Votes proposed by one agent. `await QuorumVote.open(agent)`, `put`, `close`."""

    def __init__(self, agent: AgentHandle, coordinator: Coordinator) -> None:
        self.agent = agent
        self.coordinator = coordinator

    @classmethod
    async def open(cls, agent: AgentHandle) -> QuorumVote:
        assert agent.store is not None
        return cls(agent, await Coordinator.open(agent.bus, store=agent.store))

    async def close(self) -> None:
        await self.coordinator.close()

    async def put(
        self,
        action: str,
        payload: Mapping[str, Any],
        *,
        quorum: str = "majority",
        urgency: str = "normal",
        resource: str | None = None,
        timeout: float = 5.0,
        task: str | None = None,
    ) -> Decision:
        """Propose `action` (for `task`); the Decision once fixed or at the deadline, on
        record in the audit log; its latency by outcome in the agent's metrics. In a trace,
        a span `vote.coordinate` with the voters' ballots and the decision under it."""
        attributes = {
            "action": action,
            "quorum": quorum,
            "family": family_of(self.coordinator.subjects.propose),
            "messaging.operation.type": "send",
            **({"task": task} if task else {}),
        }
        async with self.agent.span("vote.coordinate", **attributes) as span:
            started = time.monotonic()
            result = await self.coordinator.coordinate(
                action,
                payload,
                quorum=quorum,
                urgency=urgency,
                resource=resource,
                timeout=timeout,
                wait_execution=False,
            )
            decision = result.decision
            if span is not None:
                span.outcome = str(decision.outcome)
                span.attributes["proposal"] = decision.proposal_id
            if not result.replayed:  # an earlier decision on this id took no time now
                elapsed = time.monotonic() - started
                self.agent.metrics.decision_done(str(decision.outcome), elapsed)
            await record_now(
                self.agent,
                AuditEvent.DECISION,
                span_attributes={"family": attributes["family"]},
                task=task,
                proposal=decision.proposal_id,
                action=action,
                outcome=str(decision.outcome),
                yes=decision.summary.yes,
                needed=decision.summary.needed,
                voters=len(decision.members),
            )
        return decision


def describe_decision(action: str, decision: Decision) -> dict[str, Any]:
    """A decision as the cycle result shows it: outcome, tally against need, each vote."""
    s = decision.summary
    return {
        "action": action,
        "proposal": decision.proposal_id,
        "outcome": str(decision.outcome),
        "committed": decision.outcome is Outcome.COMMITTED,
        "quorum": decision.quorum,
        "members": list(decision.members),
        "yes": s.yes,
        "no": s.no,
        "abstain": s.abstain,
        "needed": s.needed,
        "votes": [
            {
                "voter": v.voter,
                "choice": str(v.choice),
                "reason": v.reason,
                "scores": v.scores.to_wire(),
            }
            for v in decision.votes
        ],
    }
