"""The pure consensus core: attention scores, vote policy, quorum rules, tally and locks.

No I/O here: the coordinator and voter that carry these records over a Bus build on top.
Semantics and formulas: docs/CONSENSUS.md.
"""

from consensus.errors import ConsensusDecodeError, ConsensusError, QuorumSpecError
from consensus.locks import Lease, LockTable
from consensus.model import (
    DIMENSIONS,
    Choice,
    Decision,
    Outcome,
    Proposal,
    Scores,
    Summary,
    Urgency,
    Vote,
)
from consensus.novelty import NoveltyTracker
from consensus.policy import Thresholds, Verdict, VotePolicy
from consensus.quorum import QuorumKind, QuorumRule, parse_quorum
from consensus.scorer import (
    DEFAULT_ACTIONS,
    DEFAULT_PRIORITY,
    DEFAULT_RELEVANCE,
    ActionProfile,
    Scorer,
    ScorerConfig,
    VoterContext,
    Weights,
)
from consensus.tally import Tally, decide, tally, verify

__all__ = [
    "DEFAULT_ACTIONS",
    "DEFAULT_PRIORITY",
    "DEFAULT_RELEVANCE",
    "DIMENSIONS",
    "ActionProfile",
    "Choice",
    "ConsensusDecodeError",
    "ConsensusError",
    "Decision",
    "Lease",
    "LockTable",
    "NoveltyTracker",
    "Outcome",
    "Proposal",
    "QuorumKind",
    "QuorumRule",
    "QuorumSpecError",
    "Scorer",
    "ScorerConfig",
    "Scores",
    "Summary",
    "Tally",
    "Thresholds",
    "Urgency",
    "Verdict",
    "Vote",
    "VotePolicy",
    "VoterContext",
    "Weights",
    "decide",
    "parse_quorum",
    "tally",
    "verify",
]
