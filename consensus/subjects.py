"""Subjects of the consensus protocol in one cluster.

    amcp.<cluster>.vote.propose          Propose, proposer -> every voter
    amcp.<cluster>.vote.ballot.<token>   Ballot, voter -> the proposer that owns <token>
    amcp.<cluster>.vote.decided          Decided, proposer -> every member
    amcp.<cluster>.executions            Execution, executor -> every member

Proposals, ballots and decisions share the `vote` area, so NATS permissions can keep roles
that must not vote (S1, in agents/cluster/auth.py) out of it; acknowledgements live outside
it because any role may execute an action.
"""

from __future__ import annotations

import re

from amcp.subjects import Subjects, validate_token

__all__ = ["VOTE_AREA", "ConsensusSubjects"]

VOTE_AREA = "vote"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")


class ConsensusSubjects:
    """The protocol's subjects for the cluster of `subjects`."""

    def __init__(self, subjects: Subjects) -> None:
        self.propose = subjects.area(VOTE_AREA, "propose")
        self.decided = subjects.area(VOTE_AREA, "decided")
        self.ack = subjects.area("executions")
        self._ballot = subjects.area(VOTE_AREA, "ballot") + "."

    def ballot(self, token: str) -> str:
        """A proposer's own ballot subject."""
        return self._ballot + validate_token(token, "ballot token")

    def is_ballot(self, subject: str) -> bool:
        """Whether `subject` is some proposer's ballot subject (voters send nowhere else)."""
        return subject.startswith(self._ballot) and bool(
            _TOKEN.fullmatch(subject[len(self._ballot) :])
        )
