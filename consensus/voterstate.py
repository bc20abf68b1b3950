"""A voter's side of the protocol (sans-I/O): scores, ballots, resource leases, decisions.

- One ballot per proposal id: a proposal seen again before its deadline gets the same
  ballot back, so every proposer that asks counts the same vote.
- A voter that knows the decision on a proposal answers with it instead of voting.
- Voter-side locks: a yes vote on a proposal with a resource takes the resource's lease
  until the proposal's deadline plus the execution budget. While another proposal holds
  it, the voter votes no ("resource busy"). The lease ends when the decision is not a
  commit, when a committed proposal has nothing to execute, when its executor
  acknowledges, or when it expires. With a quorum rule in which two quorums always share
  a member (majority, all, fractions above 1/2, weighted with F >= 0.5), two proposals on
  one resource can then never be committed and executing at the same time.

Memory is bounded: a ballot or decision is forgotten once its proposal's execution window
(deadline + execution budget) has passed, when the lease it could hold is over anyway, and
at most `memory` of each are remembered (oldest first out). After that the decision log
answers for the proposal (consensus.record, within its retention horizon).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

import consensus._validate as check
from amcp.identity import Identity
from consensus.errors import ConsensusError
from consensus.locks import LockTable
from consensus.messages import Decided, Execution
from consensus.model import Choice, Outcome, Proposal, Vote
from consensus.novelty import NoveltyTracker
from consensus.policy import VotePolicy
from consensus.scorer import Scorer, VoterContext
from consensus.signatures import sign_vote

__all__ = ["VoterSettings", "VoterState"]

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class VoterSettings:
    """`execution_budget_s`: how long after a proposal's deadline a yes vote keeps its
    resource leased (and an executor may still run it); `memory`: ids remembered."""

    execution_budget_s: float = 30.0
    memory: int = 10_000

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "execution_budget_s",
            check.positive("execution_budget_s", self.execution_budget_s),
        )
        object.__setattr__(self, "memory", check.integer("memory", self.memory, 1, 2**31))

    def lease_end_ms(self, deadline_ms: int) -> int:
        """When a yes vote's lease on a proposal's resource ends, and its execution window,
        for a proposal with this deadline."""
        return deadline_ms + round(self.execution_budget_s * 1000)


@dataclass(frozen=True)
class _Ballot:
    vote: Vote
    proposer: str
    resource: str | None
    deadline_ms: int
    repeats: float
    lease_end_ms: int


class _Bounded(OrderedDict[str, T], Generic[T]):
    """A dict that forgets its oldest entries past `limit`."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def put(self, key: str, value: T) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)


class VoterState:
    """One voter's memory and rules. Time is always passed in (`context.now_ms`, `now_ms`).
    With an `identity` (the voter's own) every ballot is identity-signed when it is made."""

    def __init__(
        self,
        voter: str,
        *,
        scorer: Scorer | None = None,
        policy: VotePolicy | None = None,
        settings: VoterSettings | None = None,
        novelty: NoveltyTracker | None = None,
        identity: Identity | None = None,
    ) -> None:
        self.voter = check.text("voter", voter, 256)
        if identity is not None and identity.agent_id != self.voter:
            raise ConsensusError(f"the identity is {identity.agent_id}'s, the voter {self.voter}")
        self.identity = identity
        self.scorer = scorer if scorer is not None else Scorer()
        self.policy = policy if policy is not None else VotePolicy()
        self.settings = settings if settings is not None else VoterSettings()
        self.novelty = novelty if novelty is not None else NoveltyTracker()
        self.locks = LockTable()
        self._ballots: _Bounded[_Ballot] = _Bounded(self.settings.memory)
        self._decided: _Bounded[Decided] = _Bounded(self.settings.memory)

    def known(self, proposal_id: str) -> Decided | None:
        """The decision on `proposal_id`, if this voter has heard it."""
        return self._decided.get(proposal_id)

    def ballot(self, proposal_id: str) -> Vote | None:
        """The ballot this voter cast on `proposal_id`, if it remembers one."""
        kept = self._ballots.get(proposal_id)
        return None if kept is None else kept.vote

    def holds(self, proposal_id: str, *, now_ms: int) -> bool:
        """Whether a yes vote of this voter holds a live lease for `proposal_id`."""
        kept = self._ballots.get(proposal_id)
        if kept is None or kept.resource is None:
            return False
        lease = self.locks.holder(kept.resource, now_ms=now_ms)
        return lease is not None and lease.proposal_id == proposal_id

    def forget_past(self, now_ms: int) -> None:
        """Forget the ballots and decisions, oldest first, whose execution window ended
        before `now_ms` (called with each vote; the order is arrival order, so a long
        window at the front holds back the ones behind it until it ends: `memory` caps)."""
        lease_end = self.settings.lease_end_ms
        ballots, decided = self._ballots, self._decided
        while ballots and next(iter(ballots.values())).lease_end_ms < now_ms:
            ballots.popitem(last=False)
        while decided and lease_end(next(iter(decided.values())).proposal.deadline_ms) < now_ms:
            decided.popitem(last=False)

    def vote(
        self, proposal: Proposal, context: VoterContext, *, sign: bool = True
    ) -> Vote | Decided | None:
        """This voter's answer to `proposal`: the known decision, its ballot (the same one
        again while the deadline has not passed), or None once the deadline has passed.
        `sign=False`: a new ballot is left unsigned, for the caller to sign with others
        (consensus.signatures.sign_votes) and hand back with `keep_signed`."""
        self.forget_past(context.now_ms)
        known = self._decided.get(proposal.id)
        if known is not None:
            return known
        now = context.now_ms
        kept = self._ballots.get(proposal.id)
        if kept is not None and now < kept.deadline_ms:
            return kept.vote
        if now >= proposal.deadline_ms:
            return None
        if kept is not None:  # proposed again after its first deadline: vote afresh
            repeats = kept.repeats
        else:
            repeats = self.novelty.observe(proposal.action, proposal.resource, now)
        scores = self.scorer.score(proposal, context.evolve(repeats=repeats))
        combined = self.scorer.combine(scores)
        verdict = self.policy.decide(proposal, scores, combined)
        choice, reason = verdict.choice, verdict.reason
        if choice is Choice.YES and proposal.resource is not None:
            self.locks.expire(now_ms=now)
            holder = self.locks.acquire(
                proposal.resource,
                proposal.id,
                now_ms=now,
                expires_ms=self.settings.lease_end_ms(proposal.deadline_ms),
            )
            if holder is not None:
                choice = Choice.NO
                reason = (
                    f"no: resource {proposal.resource!r} is busy with proposal "
                    f"{holder.proposal_id!r}"
                )[:1024]
        vote = Vote(
            proposal_id=proposal.id,
            proposal_digest=proposal.digest,
            deadline_ms=proposal.deadline_ms,
            voter=self.voter,
            choice=choice,
            scores=scores,
            combined=combined,
            reason=reason,
        )
        if sign:  # once: the kept ballot is sent again as is
            vote = sign_vote(self.identity, vote)
        self._ballots.put(
            proposal.id,
            _Ballot(
                vote,
                proposal.proposer,
                proposal.resource,
                proposal.deadline_ms,
                repeats,
                self.settings.lease_end_ms(proposal.deadline_ms),
            ),
        )
        return vote

    def keep_signed(self, vote: Vote) -> None:
        """Keep `vote`, signed after it was made, as the ballot to send again, in place of
        the unsigned one `vote(..., sign=False)` kept."""
        kept = self._ballots.get(vote.proposal_id)
        unsigned = check.evolve(vote, sig=b"", batch=())
        if kept is not None and not kept.vote.sig and kept.vote == unsigned:
            self._ballots[vote.proposal_id] = replace(kept, vote=vote)  # its place stays

    def decided(self, decided: Decided) -> bool:
        """Learn a decision. The lease of a yes vote ends unless the proposal committed and
        has an executor still to acknowledge. A decision on this id by another proposer
        than the one this voter voted for is ignored (False): whoever made it up, with its
        own signature, must not end the lease of the proposal still in flight."""
        kept = self._ballots.get(decided.id)
        if kept is not None and kept.proposer != decided.proposal.proposer:
            return False
        self._decided.put(decided.id, decided)
        resource = decided.proposal.resource
        executing = decided.decision.outcome is Outcome.COMMITTED and decided.executor is not None
        if resource is not None and not executing:
            self.locks.release(resource, decided.id)
        return True

    def executed(self, execution: Execution) -> None:
        """Learn an executor's acknowledgement: a final one from the proposal's executor
        ends its lease (an acknowledgement of a decision this voter never heard is
        ignored; that lease runs out on its own)."""
        known = self._decided.get(execution.proposal_id)
        if known is None or known.executor is None or not execution.final:
            return
        resource = known.proposal.resource
        if known.executor.agent == execution.executor and resource is not None:
            self.locks.release(resource, execution.proposal_id)
