"""With no members known, no rule can be met: the outcome is no quorum, never a rejection.

A proposer whose replica has not read the member list yet (a slow bootstrap, a flood) must
not record a final "rejected" that would make the proposal id dead for the retention horizon
(issue 14, point 4). The coordinator side (nothing recorded) is tested on a real nats-server
in tests/integration/consensus/test_no_members.py.
"""

from __future__ import annotations

from functools import partial

from hypothesis import given
from hypothesis import strategies as st

from consensus import Choice, Outcome, Round, Scores, Vote, decide, verify
from consensus.quorum import parse_quorum
from consensus.tally import outcome_of, tally
from tests.support import factories

SPECS = ["majority", "all", "any", "1", "2", "7", "0.67", "2/3", "1.0", "weighted", "weighted:0.9"]
PID = "p1"

votes = st.lists(
    st.builds(
        Vote,
        proposal_id=st.sampled_from([PID, "p2"]),
        proposal_digest=st.just(bytes(32)),
        deadline_ms=st.just(6_000),
        voter=st.sampled_from(["a", "b", "x"]),
        choice=st.sampled_from(list(Choice)),
        scores=st.just(Scores(0.5, 0.5, 0.5, 0.5, 0.5)),
        combined=st.floats(0, 1),
        reason=st.just("r"),
    ),
    max_size=6,
)


proposal = partial(factories.proposal, PID, proposer="prop")


@given(st.sampled_from(SPECS), votes, st.booleans())
def test_empty_membership_is_no_quorum_before_and_at_the_deadline(
    spec: str, ballots: list[Vote], closed: bool
) -> None:
    result = tally(PID, (), parse_quorum(spec), ballots, closed=closed)
    assert result.outcome is Outcome.NO_QUORUM
    assert result.votes == () and result.ignored == len(ballots)


@given(st.sampled_from(SPECS), st.fractions(0, 5), st.booleans())
def test_outcome_of_no_members_is_no_quorum_whatever_the_support(
    spec: str, support: object, closed: bool
) -> None:
    assert outcome_of(parse_quorum(spec), support, 0, 0, closed=closed) is Outcome.NO_QUORUM


@given(st.sampled_from(SPECS), votes)
def test_a_round_without_members_is_no_quorum_at_once_and_verifies(
    spec: str, ballots: list[Vote]
) -> None:
    round_ = Round(proposal(quorum=spec), (), now_ms=1_000)
    decision = round_.decision
    assert decision is not None and decision.outcome is Outcome.NO_QUORUM
    assert decision.members == () and verify(decision)
    for vote in ballots:  # nothing offered later changes it
        assert round_.offer(vote, vote.voter, now_ms=1_500) is decision
    again = decide(proposal(quorum=spec), (), ballots, now_ms=1_000)
    assert again is not None and again.outcome is Outcome.NO_QUORUM
