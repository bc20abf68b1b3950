"""The tally: early decisions, deadline, duplicates, order independence, quorum safety."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from consensus.model import Choice, Decision, Outcome, Scores, Vote
from consensus.quorum import parse_quorum
from consensus.tally import decide, tally, verify
from tests.support import factories

PID = "p1"
FIVE = frozenset("abcde")
SPECS = ["majority", "all", "any", "2", "0.67", "2/3", "weighted", "weighted:0.75"]
SCORES = Scores(0.5, 0.5, 0.5, 0.5, 0.5)


def ballot(voter: str, choice: Choice | str, combined: float = 0.5, **changes: Any) -> Vote:
    fields: dict[str, Any] = {
        "proposal_id": PID,
        "proposal_digest": bytes(32),
        "deadline_ms": 6_000,
        "voter": voter,
        "choice": choice,
        "scores": SCORES,
        "combined": combined,
        "reason": "",
    }
    return Vote(**(fields | changes))


def outcome(spec: str, members: frozenset[str], votes: Sequence[Vote], closed: bool = False) -> str:
    return str(tally(PID, members, parse_quorum(spec), votes, closed=closed).outcome)


def yes(*voters: str) -> list[Vote]:
    return [ballot(v, Choice.YES) for v in voters]


def no(*voters: str) -> list[Vote]:
    return [ballot(v, Choice.NO) for v in voters]


def abstain(*voters: str) -> list[Vote]:
    return [ballot(v, Choice.ABSTAIN) for v in voters]


# Counting rules, early decisions and the deadline ---------------------------


@pytest.mark.parametrize(
    ("spec", "votes", "now", "at_deadline"),
    [
        ("majority", yes("a", "b"), "pending", "no_quorum"),
        ("majority", yes("a", "b", "c"), "committed", "committed"),
        ("majority", no("a", "b", "c"), "rejected", "rejected"),
        ("majority", yes("a", "b") + no("c") + abstain("d"), "pending", "no_quorum"),
        ("majority", yes("a", "b") + no("c", "d"), "pending", "no_quorum"),
        ("majority", yes("a") + no("b", "c") + abstain("d"), "rejected", "rejected"),
        ("majority", abstain("a", "b", "c"), "rejected", "rejected"),
        ("all", yes("a", "b", "c", "d"), "pending", "no_quorum"),
        ("all", yes("a", "b", "c", "d", "e"), "committed", "committed"),
        ("all", abstain("a"), "rejected", "rejected"),
        ("any", yes("e"), "committed", "committed"),
        ("any", no("a", "b", "c", "d"), "pending", "no_quorum"),
        ("any", no("a", "b", "c", "d", "e"), "rejected", "rejected"),
        ("2", yes("a", "b"), "committed", "committed"),
        ("2", no("a", "b", "c") + abstain("d"), "rejected", "rejected"),
        ("0.67", yes("a", "b", "c"), "pending", "no_quorum"),  # ceil(0.67 * 5) = 4 needed
        ("2/3", yes("a", "b", "c", "d"), "committed", "committed"),
        ("2/3", yes("a", "b", "c"), "pending", "no_quorum"),
        ("6", yes("a", "b", "c", "d", "e"), "rejected", "rejected"),
    ],
)
def test_outcomes_before_and_at_deadline(
    spec: str, votes: list[Vote], now: str, at_deadline: str
) -> None:
    assert outcome(spec, FIVE, votes) == now
    assert outcome(spec, FIVE, votes, closed=True) == at_deadline


def test_abstentions_count_as_participation_never_as_yes() -> None:
    three = frozenset("abc")
    assert outcome("majority", three, yes("a") + abstain("b")) == "pending"
    assert outcome("majority", three, yes("a") + abstain("b", "c")) == "rejected"
    result = tally(PID, three, parse_quorum("majority"), yes("a") + abstain("b"))
    assert (result.summary.yes, result.summary.abstain) == (1, 1)


def test_non_members_and_other_proposals_are_ignored() -> None:
    votes = [*yes("a", "x", "y", "z"), ballot("b", Choice.YES, proposal_id="p2")]
    result = tally(PID, FIVE, parse_quorum("majority"), votes)
    assert result.outcome is Outcome.PENDING
    assert result.ignored == 4
    assert [v.voter for v in result.votes] == ["a"]


def test_duplicates_count_once_and_the_most_cautious_ballot_wins() -> None:
    votes = [*yes("a", "a", "a", "b"), ballot("b", Choice.NO), ballot("c", Choice.ABSTAIN)]
    votes += [ballot("c", Choice.YES), ballot("d", Choice.YES, 0.9), ballot("d", Choice.YES, 0.4)]
    result = tally(PID, FIVE, parse_quorum("majority"), votes)
    chosen = {v.voter: (str(v.choice), v.combined) for v in result.votes}
    assert chosen == {"a": ("yes", 0.5), "b": ("no", 0.5), "c": ("abstain", 0.5), "d": ("yes", 0.4)}
    assert result.equivocators == frozenset("bcd")
    assert (result.summary.yes, result.summary.no, result.summary.abstain) == (2, 1, 1)


def test_summary_weights_and_needed() -> None:
    votes = [ballot("a", Choice.YES, 0.75), ballot("b", Choice.YES, 0.5), ballot("c", Choice.NO, 1)]
    summary = tally(PID, FIVE, parse_quorum("weighted"), votes).summary
    assert (summary.yes_weight, summary.no_weight, summary.abstain_weight) == (1.25, 1.0, 0.0)
    assert summary.needed == 2.5
    assert tally(PID, FIVE, parse_quorum("majority"), votes).summary.needed == 3


# Weighted quorum: the hand-computed examples of docs/CONSENSUS.md -------------


def test_weighted_example_five_members() -> None:
    # 5 members, "weighted" -> commit iff yes weight > 0.5 * 5 = 2.5.
    first = [ballot("a", "yes", 0.9), ballot("b", "yes", 0.8), ballot("c", "yes", 0.7)]
    # 2.4, and d, e silent could add 2.0: still open.
    assert outcome("weighted", FIVE, first) == "pending"
    assert outcome("weighted", FIVE, first, closed=True) == "no_quorum"
    # d says yes with 0.2: 2.6 > 2.5 commits with 4 of 5 yes.
    assert outcome("weighted", FIVE, [*first, ballot("d", "yes", 0.2)]) == "committed"
    # d and e say no: 2.4 can never exceed 2.5.
    assert outcome("weighted", FIVE, first + no("d", "e")) == "rejected"
    # d says no: 2.4 + 1.0 (e) = 3.4 > 2.5 is still possible.
    assert outcome("weighted", FIVE, first + no("d")) == "pending"


def test_weighted_example_two_thirds_of_three() -> None:
    # 3 members, "weighted:2/3" -> commit iff yes weight > 2/3 * 3 = 2.
    three = frozenset("abc")
    two_full = [ballot("a", "yes", 1.0), ballot("b", "yes", 1.0)]
    assert outcome("weighted:2/3", three, two_full) == "pending"
    assert outcome("weighted:2/3", three, [*two_full, ballot("c", "yes", 0.01)]) == "committed"
    assert outcome("weighted:2/3", three, two_full + abstain("c")) == "rejected"


def test_weighted_example_four_members_strict_threshold() -> None:
    # 4 members, "weighted" -> commit iff yes weight > 2.0.
    four = frozenset("abcd")
    votes = [ballot("a", "yes", 1.0), ballot("b", "yes", 0.6), ballot("c", "yes", 0.5)]
    assert outcome("weighted", four, votes) == "committed"  # 2.1 > 2.0
    # Half the members with full weight is not more than half: 2.0 is not > 2.0.
    assert outcome("weighted", four, yes_full("a", "b") + no("c", "d")) == "rejected"
    # One yes at 0.6 and two no: 0.6 + 1.0 (d) = 1.6 <= 2.0, rejected early.
    assert outcome("weighted", four, [ballot("a", "yes", 0.6), *no("b", "c")]) == "rejected"


def test_weighted_sum_is_exact_not_float() -> None:
    # 0.1 + 0.2 + 0.2 in floats is 0.5000000000000001 or 0.5 depending on the order; the tally
    # adds the exact binary values, so the order cannot matter.
    votes = [ballot("a", "yes", 0.1), ballot("b", "yes", 0.2), ballot("c", "yes", 0.2)]
    results = {outcome("weighted:0.5", frozenset("a"), votes[i:] + votes[:i]) for i in range(3)}
    assert len(results) == 1


def yes_full(*voters: str) -> list[Vote]:
    return [ballot(v, Choice.YES, 1.0) for v in voters]


# Properties -------------------------------------------------------------------

POOL = list("abcdefghij")
members_st = st.frozensets(st.sampled_from(POOL[:6]), min_size=1, max_size=6)
CHOICES = st.sampled_from([Choice.YES, Choice.YES, Choice.YES, Choice.NO, Choice.ABSTAIN])
any_vote = st.builds(
    ballot,
    voter=st.sampled_from(POOL[:8]),
    choice=CHOICES,
    combined=st.sampled_from([0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0]),
    proposal_id=st.sampled_from([PID, PID, PID, "other"]),
)


@given(
    st.sampled_from(SPECS),
    members_st,
    st.lists(any_vote, max_size=14),
    st.randoms(use_true_random=False),
    st.booleans(),
)
def test_tally_is_independent_of_order_duplicates_and_outsiders(
    spec: str, members: frozenset[str], votes: list[Vote], rnd: Any, closed: bool
) -> None:
    rule = parse_quorum(spec)
    reference = tally(PID, members, rule, votes, closed=closed)
    shuffled = votes + rnd.sample(votes, k=len(votes) // 2)  # duplicates, any order
    rnd.shuffle(shuffled)
    outsiders = [ballot("z", Choice.YES, 1.0), ballot("a", Choice.YES, 1.0, proposal_id="q")]
    again = tally(PID, members, rule, shuffled + outsiders, closed=closed)
    event(f"{spec} {reference.outcome}")
    assert (again.outcome, again.summary, again.votes) == (
        reference.outcome,
        reference.summary,
        reference.votes,
    )
    assert again.equivocators == reference.equivocators


@given(st.integers(1, 9), st.data())
def test_majority_never_commits_without_a_majority_of_members(n: int, data: st.DataObject) -> None:
    members = frozenset(POOL[:n])
    live = data.draw(st.frozensets(st.sampled_from(sorted(members))), label="live")
    votes = [
        ballot(voter, data.draw(CHOICES), data.draw(st.floats(0, 1))) for voter in sorted(live)
    ]
    # Noise: ballots of outsiders, and second ballots of live members (equivocation).
    noise_voter = st.sampled_from(["x", "y", *sorted(live)])
    votes += data.draw(st.lists(st.builds(ballot, noise_voter, CHOICES), max_size=6), label="noise")
    for spec in ("majority", "weighted"):
        result = tally(PID, members, parse_quorum(spec), votes, closed=True)
        event(f"{spec} {result.outcome}")
        if result.outcome is Outcome.COMMITTED:
            assert result.summary.yes >= len(members) // 2 + 1
            assert result.summary.yes <= len(live)


@given(st.sampled_from(SPECS), members_st, st.data())
def test_early_decisions_are_final_for_honest_voters(
    spec: str, members: frozenset[str], data: st.DataObject
) -> None:
    voters = data.draw(st.permutations(sorted(members | {"x"})))
    stream = [ballot(v, data.draw(CHOICES), data.draw(st.floats(0, 1))) for v in voters]
    rule = parse_quorum(spec)
    seen: Outcome | None = None
    for i in range(len(stream) + 1):
        current = tally(PID, members, rule, stream[:i]).outcome
        if seen is not None:
            assert current is seen
        elif current is not Outcome.PENDING:
            seen = current
    final = tally(PID, members, rule, stream, closed=True).outcome
    assert final is (seen or Outcome.NO_QUORUM)


@given(st.sampled_from(SPECS), st.lists(any_vote, max_size=10))
def test_the_deadline_only_turns_pending_into_no_quorum(spec: str, votes: list[Vote]) -> None:
    rule = parse_quorum(spec)
    before = tally(PID, FIVE, rule, votes).outcome
    after = tally(PID, FIVE, rule, votes, closed=True).outcome
    assert after is (Outcome.NO_QUORUM if before is Outcome.PENDING else before)


# decide() and verify() ----------------------------------------------------------


proposal = partial(factories.proposal, PID, created_ms=0, deadline_ms=5_000)


def test_decide_waits_then_decides_at_deadline() -> None:
    votes = yes("a", "b")
    assert decide(proposal(), FIVE, votes, now_ms=4_999) is None
    decision = decide(proposal(), FIVE, votes, now_ms=5_000)
    assert decision is not None
    assert decision.outcome is Outcome.NO_QUORUM
    assert decision.members == tuple("abcde")
    assert verify(decision)


def test_decide_commits_early_and_carries_what_re_derives_it() -> None:
    votes = yes("c", "a", "x") + no("b") + yes("d")
    decision = decide(proposal(), FIVE, votes, now_ms=10)
    assert decision is not None
    assert decision.outcome is Outcome.COMMITTED
    assert [v.voter for v in decision.votes] == ["a", "b", "c", "d"]
    assert (decision.summary.yes, decision.summary.no, decision.summary.needed) == (3, 1, 3.0)
    assert verify(decision)
    assert verify(Decision.from_wire(decision.to_wire()))


@given(st.sampled_from(SPECS), members_st, st.lists(any_vote, max_size=10))
def test_every_decision_verifies(spec: str, members: frozenset[str], votes: list[Vote]) -> None:
    decision = decide(proposal(quorum=spec), members, votes, now_ms=5_000)
    assert decision is not None
    assert verify(decision)


def test_verify_catches_a_forged_outcome_or_summary() -> None:
    decision = decide(proposal(), FIVE, yes("a", "b", "c"), now_ms=10)
    assert decision is not None
    wire = decision.to_wire()
    assert not verify(Decision.from_wire(wire | {"outcome": "rejected"}))
    assert not verify(Decision.from_wire(wire | {"quorum": "all"}))
    forged = wire | {"summary": wire["summary"] | {"yes_weight": 3.0}}
    assert not verify(Decision.from_wire(forged))
