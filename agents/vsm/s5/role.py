"""S5 policy: what is critical, the quorum vote on it, conflicts, escalations, adaptations.

Tools S3 calls: `classify` (critical by the policy rules, or by S4's risk), `authorise`
(a critical action put to a quorum vote of the registered voters), `resolve` (an S3/S4
conflict), `approve-allocation` (while the s5_approval adaptation holds) and `escalate`
(an oscillation S2 could not damp).

The S5 leader (the live S5 with the lowest id) also runs the adaptation engine: every
`AMCP_VSM_INTERVAL` seconds it moves the viability window on when due, evaluates the
thresholds, approves what its policy allows, writes the active adaptations to the
replicated map `vsm.adaptations` (which every role reads) and logs each change.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from agents.runtime.audit import AuditEvent
from agents.runtime.tools import CallContext, Example, Tool, tool
from agents.vsm.adaptation import Adaptation, evaluate
from agents.vsm.prompts.reminders import POLICY, policy_record
from agents.vsm.role import VsmRole
from agents.vsm.s3.allocation import Conflict
from agents.vsm.s4.analysis import TaskAnalysis
from agents.vsm.s5.rules import PolicyRules, PolicyRuling
from agents.vsm.s5.vote import QuorumVote, describe_decision
from agents.vsm.tasks import Urgency
from agents.vsm.viability import ADAPTATIONS, WINDOW, measure, rotate

if TYPE_CHECKING:
    from agents.runtime.config import AgentConfig

__all__ = ["PolicyRole"]


class ClassifyIn(BaseModel):
    texts: list[str] = Field(min_length=1, max_length=64)
    analysis: TaskAnalysis | None = None


class ClassifyOut(BaseModel):
    critical: bool
    action: str | None
    reasons: list[str]


class AuthoriseIn(BaseModel):
    task_id: str = Field(min_length=1, max_length=64)
    action: str = Field(min_length=1, max_length=128)
    description: str = Field(max_length=8192)
    urgency: Urgency = "normal"
    resource: str | None = Field(None, max_length=4096)


class VoteOut(BaseModel):
    action: str
    proposal: str
    outcome: str
    committed: bool
    quorum: str
    members: list[str]
    yes: int
    no: int
    abstain: int
    needed: float
    votes: list[dict[str, Any]]


class ResolveIn(BaseModel):
    task_id: str = Field(min_length=1, max_length=64)
    conflict: dict[str, str]
    analysis: TaskAnalysis


class ApproveIn(BaseModel):
    task_id: str = Field(min_length=1, max_length=64)
    analysis: TaskAnalysis
    agents: list[str] = Field(max_length=64)


class EscalateIn(BaseModel):
    task_id: str = Field(min_length=1, max_length=64)
    why: str = Field(max_length=2048)


class PolicyRulingOut(BaseModel):
    ok: bool
    side: str
    reason: str


# What S4's `analyse` answers for "run the test suite", as S3 passes it on.
_ANALYSIS: dict[str, Any] = {
    "complexity": "simple",
    "score": 1.0,
    "thresholds": [3.0, 6.0],
    "reasons": ["domain testing (+1)"],
    "domains": ["testing"],
    "risks": [],
    "risk_level": "low",
    "approach": {"mode": "direct", "max_iterations": 1, "review": False, "parallel": False},
}
EXAMPLES = {
    "classify": [
        Example({"texts": ["drop the users table"]}, description="a destructive step"),
        Example({"texts": ["run the test suite", "pytest -q"]}),
    ],
    "authorise": [
        Example(
            {
                "task_id": "t-42",
                "action": "restart",
                "description": "restart the payment service",
                "urgency": "high",
                "resource": "payment-service",
            },
            description="a quorum of the registered voters decides",
        )
    ],
    "resolve": [
        Example(
            {
                "task_id": "t-42",
                "conflict": {
                    "kind": "ordering",
                    "s4": "run the steps in order",
                    "s3": "parallelise the steps (cycles need too many iterations)",
                },
                "analysis": _ANALYSIS,
            }
        )
    ],
    "approve": [Example({"task_id": "t-42", "analysis": _ANALYSIS, "agents": ["s1-3f2a9c01"]})],
    "escalate": [
        Example({"task_id": "t-42", "why": "config/app.yaml flipped between two contents"})
    ],
}


class PolicyRole(VsmRole):
    role = "s5"
    voter = True  # S5 decides critical actions: every S5 agent votes

    def __init__(self, config: AgentConfig) -> None:
        super().__init__(config)
        self.policy = PolicyRules.load()  # a bad policy file stops the agent at start
        self._refused: set[str] = set()
        self.votes: QuorumVote | None = None
        self.decided = {"committed": 0, "not_committed": 0}

    def role_tools(self) -> Iterable[Tool]:
        role = self

        # A ruling is a function of its input, logged; running it again changes nothing.
        @tool(audited=False, read_only=True, examples=EXAMPLES["classify"])
        async def classify(args: ClassifyIn, ctx: CallContext) -> ClassifyOut:
            """Is this task a critical action (a quorum vote before it runs), and why."""
            return ClassifyOut(**role.policy.classify(args.texts, args.analysis).to_wire())

        @tool(audited=False, examples=EXAMPLES["authorise"])
        async def authorise(args: AuthoriseIn, ctx: CallContext) -> VoteOut:
            """Put a critical action to a quorum vote of the registered voters."""
            return VoteOut(**await role.authorise(args))

        @tool(audited=False, read_only=True, examples=EXAMPLES["resolve"])
        async def resolve(args: ResolveIn, ctx: CallContext) -> PolicyRulingOut:
            """Resolve a conflict between S3's allocation and S4's analysis."""
            conflict = Conflict(**args.conflict)
            ruling = role.policy.resolve(conflict, args.analysis)
            return PolicyRulingOut(
                **await role.ruled("resolved", args.task_id, ruling, conflict.kind)
            )

        @tool("approve-allocation", audited=False, read_only=True, examples=EXAMPLES["approve"])
        async def approve_allocation(args: ApproveIn, ctx: CallContext) -> PolicyRulingOut:
            """Approve S3's allocation (while the s5_approval adaptation holds)."""
            ruling = role.policy.approve_allocation(args.analysis, args.agents, role.under_review())
            return PolicyRulingOut(
                **await role.ruled("approval", args.task_id, ruling, "allocation")
            )

        @tool(audited=False, read_only=True, examples=EXAMPLES["escalate"])
        async def escalate(args: EscalateIn, ctx: CallContext) -> PolicyRulingOut:
            """Decide on an oscillation S2 escalated: stop the step, or proceed."""
            ruling = role.policy.escalation(args.why)
            return PolicyRulingOut(**await role.ruled("escalation", args.task_id, ruling, args.why))

        return [classify, authorise, resolve, approve_allocation, escalate]

    async def ruled(
        self, event: str, task_id: str, ruling: PolicyRuling, about: str
    ) -> dict[str, Any]:
        await self.log(event, task=task_id, about=about, **ruling.to_wire())
        return ruling.to_wire()

    async def authorise(self, args: AuthoriseIn) -> dict[str, Any]:
        assert self.votes is not None
        decision = await self.votes.put(
            args.action,
            {"task": args.task_id, "description": args.description[:512]},
            quorum=self.policy.quorum,
            urgency=args.urgency,
            resource=args.resource,
            timeout=self.policy.vote_timeout,
            task=args.task_id,
        )
        doc = describe_decision(args.action, decision)
        self.decided["committed" if doc["committed"] else "not_committed"] += 1
        return doc

    # -- the adaptation engine ----------------------------------------------------------

    async def on_start(self) -> None:
        self.votes = await QuorumVote.open(self.agent)
        # the vote policy, for the reminders every LLM prompt carries (agents.vsm.prompts)
        actions = [action for _, action in self.policy.critical]
        record = policy_record(self.policy.quorum, self.policy.vote_timeout, actions)
        if self.values.get(POLICY) != record:
            await self.agent.store.set(POLICY, record)  # type: ignore[union-attr]
        self.agent.spawn(self._engine_loop(), "adaptation-engine")

    async def stop(self) -> None:
        if self.votes is not None:
            await self.votes.close()

    async def _engine_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.interval)
            if self.leader("s5") == self.agent.id:
                await self.adapt()

    async def adapt(self) -> None:
        """One round: move the window on when due, then switch adaptations on and off."""
        store = self.agent.store
        assert store is not None
        window = rotate(self.values, self.settings.window)
        if window is not None:
            await store.set(WINDOW, window)
        changes = evaluate(measure(self.values), self.adaptations())
        for adaptation in changes.activate:
            ruling = self.policy.approve_adaptation(adaptation)
            if not ruling.ok:
                if adaptation.key not in self._refused:
                    self._refused.add(adaptation.key)
                    await self._log("refused", adaptation, ruling.reason)
                continue
            record = {**adaptation.to_wire(), "approved_by": self.agent.id, "since_ms": _ms()}
            await self._log("activated", adaptation, ruling.reason)
            await store.map_set(ADAPTATIONS, adaptation.key, record)
        for adaptation, value in changes.clear:
            why = "no samples left in the window" if value is None else f"recovered to {value}"
            await self._log("cleared", adaptation, why)
            await store.map_delete(ADAPTATIONS, adaptation.key)
            self._refused.discard(adaptation.key)

    async def _log(self, change: str, adaptation: Adaptation, why: str) -> None:
        """On its way to the cluster log before any agent can act on the change."""
        await self.log(AuditEvent.ADAPTATION, change=change, why=why, **adaptation.to_wire())

    def status(self) -> dict[str, object]:
        return {"votes": dict(self.decided)}


def _ms() -> int:
    return int(time.time() * 1000)
