"""Subjects of the consensus protocol in one cluster.

    amcp.<cluster>.vote.propose          Propose, proposer -> every voter
    amcp.<cluster>.vote.ballot.<token>   Ballot, voter -> the proposer that owns <token>

Both are in the `vote` area, so NATS permissions can keep roles that must not propose or
vote (S1, in agents/cluster/auth.py) out of it. Decisions and acknowledgements travel in
the decision log (consensus.record), replicated over the shared context's own subjects.
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
        self._ballot = subjects.area(VOTE_AREA, "ballot") + "."

    def ballot(self, token: str) -> str:
        """A proposer's own ballot subject."""
        return self._ballot + validate_token(token, "ballot token")

    def is_ballot(self, subject: str) -> bool:
        """Whether `subject` is some proposer's ballot subject (voters send nowhere else)."""
        return subject.startswith(self._ballot) and bool(
            _TOKEN.fullmatch(subject[len(self._ballot) :])
        )
