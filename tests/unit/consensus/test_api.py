"""The public API of the consensus package, walked through one vote from proposal to decision."""

from __future__ import annotations

import msgpack

import consensus
from consensus import (
    Choice,
    Decision,
    LockTable,
    NoveltyTracker,
    Outcome,
    Proposal,
    Scorer,
    Urgency,
    Vote,
    VotePolicy,
    VoterContext,
    decide,
    verify,
)


def test_all_names_are_exported() -> None:
    assert sorted(consensus.__all__) == sorted(set(consensus.__all__))
    for name in consensus.__all__:
        assert hasattr(consensus, name), name


def test_error_hierarchy_roots_in_amcp() -> None:
    from amcp.errors import AmcpError

    assert issubclass(consensus.ConsensusError, AmcpError)
    assert issubclass(consensus.QuorumSpecError, consensus.ConsensusError)
    assert issubclass(consensus.ConsensusDecodeError, consensus.ConsensusError)


def test_one_vote_end_to_end() -> None:
    locks = LockTable()
    proposal = Proposal(
        id="p-1",
        action="restart",
        proposer="s3",
        created_ms=1_000,
        deadline_ms=31_000,
        payload={"targets": ["worker-1"]},
        resource="worker-1",
        quorum="majority",
        urgency=Urgency.HIGH,
    )
    assert locks.acquire("worker-1", proposal.id, now_ms=1_000, expires_ms=61_000) is None
    wire = msgpack.packb(proposal.to_wire())

    members = {"s1": 5, "s2": 5, "s3": 4, "s4": 1, "s5": 5}  # role -> live members it sees
    scorer, policy = Scorer(), VotePolicy()
    ballots: list[bytes] = []
    for role, live in members.items():
        received = Proposal.from_wire(msgpack.unpackb(wire))
        repeats = NoveltyTracker().observe(received.action, received.resource, 2_000)
        ctx = VoterContext(role=role, members=5, live=live, now_ms=2_000, repeats=repeats)
        scores = scorer.score(received, ctx)
        vote = policy.cast(received, role, scores, scorer.combine(scores))
        ballots.append(msgpack.packb(vote.to_wire()))

    votes = [Vote.from_wire(msgpack.unpackb(b)) for b in ballots]
    by_voter = {v.voter: v.choice for v in votes}
    # s4 sees 1 of 5 members alive: confidence 0.2 < 0.4, it abstains; the others vote yes.
    assert by_voter == {"s1": Choice.YES, "s2": Choice.YES, "s3": Choice.YES,
                        "s4": Choice.ABSTAIN, "s5": Choice.YES}  # fmt: skip
    decision = decide(proposal, members, votes, now_ms=2_000)
    assert decision is not None and decision.outcome is Outcome.COMMITTED
    assert verify(Decision.from_wire(msgpack.unpackb(msgpack.packb(decision.to_wire()))))
    assert locks.release("worker-1", proposal.id)
