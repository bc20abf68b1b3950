"""The protocol's pure parts: wire messages, the proposer's Round, the voter's VoterState."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from functools import partial

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus import (
    Ballot,
    Choice,
    ConsensusDecodeError,
    ConsensusError,
    Decided,
    ExecState,
    Execution,
    Executor,
    Outcome,
    Proposal,
    Propose,
    Round,
    Scores,
    Thresholds,
    Vote,
    VotePolicy,
    VoterContext,
    VoterSettings,
    VoterState,
    decide,
    verify,
)
from tests.support import factories

FIVE = ("a", "b", "c", "d", "e")
SCORES = Scores(0.5, 0.5, 0.5, 1.0, 1.0)


# proposal(id, resource, ...): a restart of w1 by the coordinator "prop"
proposal = partial(factories.proposal, proposer="prop", payload={"targets": ["w1"]})


def ballot(
    voter: str, choice: Choice | str = Choice.YES, pid: str = "p1", on: Proposal | None = None
) -> Vote:
    """`voter`'s ballot on `on` (default: the plain proposal of id `pid`)."""
    judged = on or proposal(pid)
    return Vote(
        proposal_id=pid,
        proposal_digest=judged.digest,
        deadline_ms=judged.deadline_ms,
        voter=voter,
        choice=choice,
        scores=SCORES,
        combined=0.7,
        reason="r",
    )


def ctx(now_ms: int = 2_000, members: int = 5) -> VoterContext:
    return VoterContext(role="s5", members=members, live=members, now_ms=now_ms)


def decided_on(p: Proposal, outcome: str, executor: Executor | None = None) -> Decided:
    votes = {
        "committed": [ballot(v, pid=p.id, on=p) for v in "abc"],
        "rejected": [ballot(v, Choice.NO, pid=p.id, on=p) for v in "abc"],
        "no_quorum": [],
    }[outcome]
    decision = decide(p, FIVE, votes, now_ms=p.deadline_ms)
    assert decision is not None and str(decision.outcome) == outcome
    return Decided(proposal=p, decision=decision, executor=executor, decided_ms=p.deadline_ms)


# Wire messages ----------------------------------------------------------------------


def test_messages_round_trip_through_their_wire_form() -> None:
    p = proposal(resource="w1")
    d = decided_on(p, "committed", Executor("s1-a", "restart"))
    e = Execution(
        proposal_id="p1",
        executor="s1-a",
        tool="restart",
        state=ExecState.DONE,
        started_ms=5,
        finished_ms=9,
        result={"ok": [1, 2]},
    )
    for message in (
        Propose(proposal=p, reply="amcp.c.vote.ballot.t1"),
        Ballot(vote=ballot("a")),
        Ballot(decided=d),
        d,
        e,
    ):
        assert type(message).from_wire(message.to_wire()) == message


def test_decided_records_are_consistent() -> None:
    p = proposal()
    rejected = decided_on(p, "rejected")
    with pytest.raises(ConsensusError, match="only a committed decision"):
        Decided(
            proposal=p,
            decision=rejected.decision,
            executor=Executor("x", "t"),
            decided_ms=1,
        )
    with pytest.raises(ConsensusError, match="another proposal"):
        Decided(proposal=proposal("p2"), decision=rejected.decision, executor=None, decided_ms=1)
    with pytest.raises(ConsensusError, match="either a vote or"):
        Ballot()


@settings(max_examples=300)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(["vote", "decided", "proposal", "reply", "id"]), inner
            )
        ),
        max_leaves=12,
    )
)
def test_from_wire_raises_only_decode_errors(data: object) -> None:
    for kind in (Ballot, Decided, Execution, Propose, Executor):
        with contextlib.suppress(ConsensusDecodeError):
            kind.from_wire(data)


# The proposer's round ---------------------------------------------------------------


def test_round_counts_members_voting_in_their_own_name_once() -> None:
    r = Round(proposal(), FIVE, now_ms=1_000)
    assert r.offer(ballot("a"), "a", now_ms=1_100) is None
    assert r.offer(ballot("a"), "a", now_ms=1_100) is None  # the same ballot again
    assert r.offer(ballot("b"), "mallory", now_ms=1_100) is None  # b's vote sent by another
    assert r.offer(ballot("zed"), "zed", now_ms=1_100) is None  # not a member
    assert r.offer(ballot("b", pid="p9"), "b", now_ms=1_100) is None  # another proposal
    # a ballot on another proposal under the same id: another payload, quorum, deadline
    for other in (
        proposal(payload={"targets": ["*"]}),
        proposal(quorum="1"),
        proposal(action="wipe"),
    ):
        assert r.offer(ballot("b", on=other), "b", now_ms=1_100) is None
    assert r.refused == {
        "not_its_sender": 1,
        "not_a_member": 1,
        "other_proposal": 1,
        "other_proposal_content": 3,
    }
    assert r.offer(ballot("b"), "b", now_ms=1_200) is None
    decision = r.offer(ballot("c"), "c", now_ms=1_300)
    assert decision is not None and decision.outcome is Outcome.COMMITTED
    assert [v.voter for v in decision.votes] == ["a", "b", "c"] and verify(decision)
    assert r.offer(ballot("d", Choice.NO), "d", now_ms=1_400) is decision  # decided: final


def test_round_rejects_early_and_expires_to_no_quorum() -> None:
    r = Round(proposal(), FIVE, now_ms=1_000)
    for v in "ab":
        r.offer(ballot(v, Choice.NO), v, now_ms=1_100)
    rejected = r.offer(ballot("c", Choice.NO), "c", now_ms=1_100)
    assert rejected is not None and rejected.outcome is Outcome.REJECTED
    r2 = Round(proposal(), FIVE, now_ms=1_000)
    r2.offer(ballot("a"), "a", now_ms=1_100)
    late = r2.expire(now_ms=5_999)  # called a little early by a timer: still as at the deadline
    assert late.outcome is Outcome.NO_QUORUM and late.summary.yes == 1 and verify(late)


def test_round_without_members_is_decided_before_any_ballot() -> None:
    r = Round(proposal(), (), now_ms=1_000)  # no members known: no quorum, never rejected
    assert r.decision is not None and r.decision.outcome is Outcome.NO_QUORUM
    r3 = Round(proposal(quorum="7"), FIVE, now_ms=1_000)
    assert r3.decision is not None and r3.decision.outcome is Outcome.REJECTED


@given(
    choices=st.lists(st.sampled_from(list(Choice)), min_size=5, max_size=5),
    order=st.permutations(range(5)),
    extra=st.lists(st.tuples(st.integers(0, 4), st.sampled_from(["x", "a", "zed"])), max_size=4),
)
def test_round_decision_is_independent_of_arrival_order(
    choices: list[Choice], order: list[int], extra: list[tuple[int, str]]
) -> None:
    """Members' ballots in any order, with impersonations mixed in, give the same outcome
    as the tally of the members' own ballots (up to the point it was fixed)."""
    ballots = [(ballot(FIVE[i], choices[i]), FIVE[i]) for i in range(5)]
    forged = [(ballot(FIVE[i], Choice.YES), sender) for i, sender in extra if sender != FIVE[i]]
    in_order = [ballots[i] for i in order] + forged
    r = Round(proposal(), FIVE, now_ms=1_000)
    for vote, sender in in_order:
        r.offer(vote, sender, now_ms=1_100)
    final = r.expire(now_ms=6_000)
    reference = decide(proposal(), FIVE, [v for v, _ in ballots], now_ms=6_000)
    assert reference is not None and final.outcome is reference.outcome
    assert verify(final)


@given(
    quorum=st.sampled_from(["majority", "all", "any", "2", "0.6", "weighted", "weighted:0.3"]),
    sent=st.lists(
        st.tuples(
            st.sampled_from(FIVE),
            st.sampled_from(list(Choice)),
            st.sampled_from([0.0, 0.2, 0.5, 0.7, 1.0]),
        ),
        max_size=9,
    ),
)
def test_round_decides_when_and_as_the_tally_of_its_ballots_does(
    quorum: str, sent: list[tuple[str, Choice, float]]
) -> None:
    """The round's running count (members sending two ballots included) decides at the
    same ballot as the full tally of the ballots so far, with the same decision."""
    p = proposal(quorum=quorum)
    r = Round(p, FIVE, now_ms=1_000)
    so_far: list[Vote] = []
    for voter, choice, combined in sent:
        vote = replace(ballot(voter, choice, on=p), combined=combined)
        before = r.decision
        got = r.offer(vote, voter, now_ms=1_100)
        if before is not None:
            assert got is before
            continue
        so_far.append(vote)
        assert got == decide(p, FIVE, so_far, now_ms=1_100)


# The voter's state ------------------------------------------------------------------


def test_voter_casts_one_ballot_per_id_and_answers_with_a_known_decision() -> None:
    state = VoterState("a")
    p = proposal()
    first = state.vote(p, ctx(2_000))
    assert isinstance(first, Vote) and first.choice is Choice.YES
    again = state.vote(proposal(created_ms=1_500, deadline_ms=7_000), ctx(3_000))
    assert again is first  # same id before its first deadline: the same ballot
    assert state.vote(proposal("late"), ctx(6_000)) is None  # past its deadline
    d = decided_on(p, "committed")
    state.decided(d)
    assert state.vote(p, ctx(3_000)) is d and state.known("p1") is d


def test_voter_votes_afresh_on_an_id_proposed_again_after_its_deadline() -> None:
    state = VoterState("a")
    state.vote(proposal(), ctx(2_000))
    fresh = state.vote(proposal(created_ms=7_000, deadline_ms=9_000), ctx(7_500))
    assert isinstance(fresh, Vote) and fresh.choice is Choice.YES


def test_a_busy_resource_gets_a_no_with_the_holder_named() -> None:
    state = VoterState("a", settings=VoterSettings(execution_budget_s=10))
    first = state.vote(proposal("p1", "db"), ctx())
    second = state.vote(proposal("p2", "db"), ctx())
    other = state.vote(proposal("p3", "cache"), ctx())
    assert isinstance(first, Vote) and first.choice is Choice.YES
    assert isinstance(second, Vote) and second.choice is Choice.NO
    assert second.reason == "no: resource 'db' is busy with proposal 'p1'"
    assert isinstance(other, Vote) and other.choice is Choice.YES
    assert state.holds("p1", now_ms=2_000) and not state.holds("p2", now_ms=2_000)
    # the lease runs to deadline + budget, then a new proposal may have it
    assert not state.holds("p1", now_ms=6_000 + 10_000)
    later = state.vote(proposal("p4", "db", created_ms=16_000, deadline_ms=20_000), ctx(16_000))
    assert isinstance(later, Vote) and later.choice is Choice.YES


def test_a_policy_no_takes_no_lease() -> None:
    cautious = VotePolicy(Thresholds(risk_max=0.0))
    state = VoterState("a", policy=cautious)
    vote = state.vote(proposal("p1", "db"), ctx())
    assert isinstance(vote, Vote) and vote.choice is Choice.NO and len(state.locks) == 0


@pytest.mark.parametrize(
    ("outcome", "executor", "released"),
    [
        ("rejected", None, True),
        ("no_quorum", None, True),
        ("committed", None, True),  # nothing to execute: the commit is the end
        ("committed", Executor("x1", "t"), False),  # held until x1 acknowledges
    ],
)
def test_leases_end_with_the_decision_unless_an_execution_is_pending(
    outcome: str, executor: Executor | None, released: bool
) -> None:
    state = VoterState("a")
    p = proposal("p1", "db")
    state.vote(p, ctx())
    state.decided(decided_on(p, outcome, executor))
    assert state.holds("p1", now_ms=2_000) is not released


def test_only_the_executors_final_acknowledgement_ends_the_lease() -> None:
    state = VoterState("a")
    p = proposal("p1", "db")
    state.vote(p, ctx())
    state.decided(decided_on(p, "committed", Executor("x1", "t")))

    def ack(executor: str, exec_state: ExecState) -> Execution:
        return Execution(
            proposal_id="p1", executor=executor, tool="t", state=exec_state, started_ms=1
        )

    state.executed(ack("x2", ExecState.DONE))  # not the executor
    state.executed(ack("x1", ExecState.RUNNING))  # a claim, not the end
    assert state.holds("p1", now_ms=2_000)
    state.executed(ack("x1", ExecState.FAILED))
    assert not state.holds("p1", now_ms=2_000)


def test_memory_is_bounded() -> None:
    state = VoterState("a", settings=VoterSettings(memory=3))
    for i in range(10):
        state.vote(proposal(f"p{i}"), ctx())
    assert state.ballot("p9") is not None and state.ballot("p0") is None
