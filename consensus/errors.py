"""Errors of the consensus core, rooted in amcp's one hierarchy so callers catch AmcpError.

The whole tree (amcp's base above, this package's classes below it):

    Exception
    └── AmcpError                      (amcp.errors)
        └── ConsensusError             a consensus value or setting is invalid
            ├── QuorumSpecError        a quorum spec string does not parse
            ├── ConsensusDecodeError   a wire dict is not a valid proposal, vote or decision
            └── ProposalConflict       a proposal id reused for a different request
"""

from __future__ import annotations

from amcp.errors import AmcpError

__all__ = ["ConsensusDecodeError", "ConsensusError", "ProposalConflict", "QuorumSpecError"]


class ConsensusError(AmcpError):
    """A consensus value or setting is invalid; the message says which and why."""


class QuorumSpecError(ConsensusError):
    """A quorum spec string does not parse; the message is one line naming the spec."""


class ConsensusDecodeError(ConsensusError):
    """A wire dict is not a valid proposal, vote or decision. The only error from_wire raises."""


class ProposalConflict(ConsensusError):
    """A proposal id was proposed again for a different action, payload or rule."""
