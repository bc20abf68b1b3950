"""The deterministic tally: from members, a quorum rule and ballots to an outcome.

The result depends only on the set of ballots, never on their arrival order, so any member
can re-derive a decision from the votes it carries. Rules (docs/CONSENSUS.md):
- only ballots of members on this proposal count; the others are ignored;
- each member counts once; if a member sent differing ballots, the most cautious one counts
  (no before abstain before yes, then the lowest combined score), and it is reported;
- abstentions count as participation, never as yes;
- COMMITTED as soon as the yes support passes the rule, REJECTED as soon as it cannot pass
  even if every silent member voted yes with full weight, NO_QUORUM at the deadline otherwise;
- with no members, NO_QUORUM at once: nobody voted no, the proposer just knows no voters.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from consensus.model import Choice, Decision, Outcome, Proposal, Summary, Vote
from consensus.quorum import QuorumRule, Support, parse_quorum

__all__ = ["Tally", "decide", "tally", "verify"]

_CAUTION = {Choice.NO: 0, Choice.ABSTAIN: 1, Choice.YES: 2}


@dataclass(frozen=True)
class Tally:
    """Where a vote stands now.

    `votes` are the counted ballots (one per member, sorted by voter); `ignored` counts the
    ballots of non-members or on another proposal; `equivocators` are members that sent
    differing ballots.
    """

    outcome: Outcome
    summary: Summary
    votes: tuple[Vote, ...]
    ignored: int
    equivocators: frozenset[str]


def tally(
    proposal_id: str,
    members: Iterable[str],
    rule: QuorumRule,
    votes: Iterable[Vote],
    *,
    closed: bool = False,
) -> Tally:
    """Count `votes` on `proposal_id` among `members`; `closed` means the deadline has passed."""
    member_set = frozenset(members)
    counted, ignored, equivocators = _count(proposal_id, member_set, votes)
    outcome = _outcome(rule, counted, len(member_set), closed)
    summary = _summarize(counted, rule.needed(len(member_set)))
    return Tally(outcome, summary, counted, ignored, equivocators)


def decide(
    proposal: Proposal, members: Iterable[str], votes: Iterable[Vote], *, now_ms: int
) -> Decision | None:
    """The Decision on `proposal` at `now_ms`, or None while it is still pending (the same
    outcome as `tally`, without building a summary while nothing is decided)."""
    member_set = frozenset(members)
    rule = parse_quorum(proposal.quorum)
    counted, _, _ = _count(proposal.id, member_set, votes)
    outcome = _outcome(rule, counted, len(member_set), now_ms >= proposal.deadline_ms)
    if outcome is Outcome.PENDING:
        return None
    return Decision(
        proposal_id=proposal.id,
        outcome=outcome,
        quorum=proposal.quorum,
        members=tuple(member_set),
        votes=counted,
        summary=_summarize(counted, rule.needed(len(member_set))),
    )


def _count(
    proposal_id: str, member_set: frozenset[str], votes: Iterable[Vote]
) -> tuple[tuple[Vote, ...], int, frozenset[str]]:
    """The counted ballots (one per member, the most cautious, sorted by voter), how many
    were ignored, and the members that sent differing ballots."""
    ballots: dict[str, set[Vote]] = {}
    ignored = 0
    for vote in votes:
        if vote.proposal_id != proposal_id or vote.voter not in member_set:
            ignored += 1
            continue
        ballots.setdefault(vote.voter, set()).add(vote)
    counted = tuple(
        next(iter(sent)) if len(sent) == 1 else min(sent, key=_caution)
        for _, sent in sorted(ballots.items())
    )
    equivocators = frozenset(voter for voter, sent in ballots.items() if len(sent) > 1)
    return counted, ignored, equivocators


def _outcome(rule: QuorumRule, counted: tuple[Vote, ...], n: int, closed: bool) -> Outcome:
    support = rule.support([v.combined for v in counted if v.choice is Choice.YES])
    return outcome_of(rule, support, n, n - len(counted), closed=closed)


def outcome_of(
    rule: QuorumRule, support: Support, members: int, silent: int, *, closed: bool
) -> Outcome:
    """The outcome of `support` from the yes votes while `silent` members have not voted:
    committed once it passes, rejected once it cannot pass even if they all say yes.
    With no members there is nobody to reject it: no quorum, so nothing final is decided
    (a proposer that cannot read the member list must not kill the proposal id)."""
    if members == 0:
        return Outcome.NO_QUORUM
    if rule.passes(support, members):
        return Outcome.COMMITTED
    if not rule.passes(support + silent, members):
        return Outcome.REJECTED
    return Outcome.NO_QUORUM if closed else Outcome.PENDING


def verify(decision: Decision) -> bool:
    """Whether the decision's outcome and summary follow from its own members and votes.

    Checked as at the deadline: an early outcome stays the same then, and NO_QUORUM needs it.
    """
    again = tally(
        decision.proposal_id,
        decision.members,
        parse_quorum(decision.quorum),
        decision.votes,
        closed=True,
    )
    return again.outcome is decision.outcome and again.summary == decision.summary


def _caution(vote: Vote) -> tuple[object, ...]:
    """Order of a member's differing ballots: the first is the one that counts."""
    scores = tuple(vote.scores.to_wire().values())
    return (_CAUTION[vote.choice], vote.combined, scores, vote.reason, vote.sig)


def _summarize(counted: tuple[Vote, ...], needed: Support) -> Summary:
    """Counts and summed combined scores per choice. fsum is exact, so order cannot matter."""
    by_choice = {c: [v.combined for v in counted if v.choice is c] for c in Choice}
    return Summary(
        yes=len(by_choice[Choice.YES]),
        no=len(by_choice[Choice.NO]),
        abstain=len(by_choice[Choice.ABSTAIN]),
        yes_weight=math.fsum(by_choice[Choice.YES]),
        no_weight=math.fsum(by_choice[Choice.NO]),
        abstain_weight=math.fsum(by_choice[Choice.ABSTAIN]),
        needed=float(needed),
    )
