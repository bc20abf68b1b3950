"""Errors of the consensus core, rooted in amcp's one hierarchy so callers catch AmcpError."""

from __future__ import annotations

from amcp.errors import AmcpError

__all__ = ["ConsensusDecodeError", "ConsensusError", "QuorumSpecError"]


class ConsensusError(AmcpError):
    """A consensus value or setting is invalid; the message says which and why."""


class QuorumSpecError(ConsensusError):
    """A quorum spec string does not parse; the message is one line naming the spec."""


class ConsensusDecodeError(ConsensusError):
    """A wire dict is not a valid proposal, vote or decision. The only error from_wire raises."""
