"""One proposal's vote as the proposer sees it (sans-I/O): ballots in, a decision out.

The proposer fixes the members when it proposes (the registered voters, crashed ones
included) and offers each ballot it receives together with the verified sender of its
frame. A ballot counts only if its voter is that sender, a member, it is on this
proposal and (given a `verifier`: identities on) it carries its voter's identity
signature; the others are refused and counted by reason (`identity_<verdict>` for the
last: the frame's sender is only "a holder of the cluster key"). The round decides as soon as the
outcome is fixed (tally.decide), or NO_QUORUM when `expire` is called at the deadline.
While each member has sent one ballot, the round keeps the yes support as it goes and runs
the full tally only once that support fixes the outcome (the same test as the tally's).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from amcp.attest import IdentityVerdict, IdentityVerifier
from consensus.model import Choice, Decision, Outcome, Proposal, Vote
from consensus.quorum import Support, parse_quorum
from consensus.signatures import check_vote
from consensus.tally import decide, outcome_of

__all__ = ["Round"]


class Round:
    """Collects the ballots on one proposal among fixed members; decides once."""

    def __init__(
        self,
        proposal: Proposal,
        members: Iterable[str],
        *,
        now_ms: int,
        verifier: IdentityVerifier | None = None,
    ) -> None:
        self.proposal = proposal
        self.members = frozenset(members)
        self.verifier = verifier
        self.votes: list[Vote] = []
        self.refused: Counter[str] = Counter()
        self._rule = parse_quorum(proposal.quorum)
        self._voted: set[str] = set()
        self._support: Support = 0  # of the yes ballots, while no member sent two
        self._equivocal = False
        # Fixed before any ballot: no members (no quorum), or a count above the membership.
        self.decision: Decision | None = (
            decide(proposal, self.members, (), now_ms=now_ms) if self._may_fix() else None
        )

    def offer(self, vote: Vote, sender: str, *, now_ms: int) -> Decision | None:
        """Count `vote`, received in a frame signed by `sender`; the decision once fixed.

        Ballots arriving after the decision are not counted: the decision carries the
        ballots that fixed it, so anyone can re-derive it.
        """
        if self.decision is not None:
            return self.decision
        if vote.proposal_id != self.proposal.id:
            self.refused["other_proposal"] += 1
        elif vote.proposal_digest != self.proposal.digest:
            # a ballot on another request under this id (another action, payload, resource
            # or quorum): counting it would lend its voter's yes to what it never judged
            self.refused["other_proposal_content"] += 1
        elif vote.voter != sender:
            self.refused["not_its_sender"] += 1  # a member voting in another's name
        elif vote.voter not in self.members:
            self.refused["not_a_member"] += 1
        elif (verdict := check_vote(self.verifier, vote)) is not IdentityVerdict.OK:
            self.refused[f"identity_{verdict}"] += 1
        else:
            self.votes.append(vote)
            if vote.voter in self._voted:
                self._equivocal = True  # from now on the tally itself tests every ballot
            else:
                self._voted.add(vote.voter)
                if vote.choice is Choice.YES:
                    self._support += self._rule.weight(vote.combined)
            if self._equivocal or self._may_fix():
                self.decision = decide(self.proposal, self.members, self.votes, now_ms=now_ms)
        return self.decision

    def _may_fix(self) -> bool:
        """Whether the ballots so far fix the outcome, by the tally's own test on the yes
        support kept as they come."""
        n = len(self.members)
        silent = n - len(self._voted)
        outcome = outcome_of(self._rule, self._support, n, silent, closed=False)
        return outcome is not Outcome.PENDING

    def expire(self, *, now_ms: int) -> Decision:
        """The decision at (or after) the deadline: NO_QUORUM unless it was fixed before."""
        if self.decision is None:
            at = max(now_ms, self.proposal.deadline_ms)
            self.decision = decide(self.proposal, self.members, self.votes, now_ms=at)
        assert self.decision is not None
        return self.decision
