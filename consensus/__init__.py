"""Quorum votes on critical actions: the pure core (attention scores, vote policy, quorum
rules, tally, locks, the proposer's round and the voter's state, the protocol messages) and,
on top, the coordinator and voter service that carry them over a Bus.

    decision = await coordinate_action(bus, "restart", {"targets": ["w1"]}, resource="w1")

Semantics, formulas and the protocol: docs/CONSENSUS.md.
"""

import typing

import lazy_loader

if typing.TYPE_CHECKING:
    from consensus.coordinator import Coordination, Coordinator, coordinate_action
    from consensus.errors import (
        ConsensusDecodeError,
        ConsensusError,
        ProposalConflict,
        QuorumSpecError,
    )
    from consensus.locks import Lease, LockTable
    from consensus.messages import Ballot, Decided, ExecState, Execution, Executor, Propose
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
    from consensus.record import VOTER_ROLE, VOTERS_KEY, DecisionLog, DecisionRetention
    from consensus.round import Round
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
    from consensus.service import VoterService, roll_context
    from consensus.subjects import ConsensusSubjects
    from consensus.tally import Tally, decide, tally, verify
    from consensus.voterstate import VoterSettings, VoterState

# Each name loads its module on first use (PEP 562): a command line that imports one
# module of this package does not pay for all the others.
__getattr__, __dir__, _ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "coordinator": ["Coordination", "Coordinator", "coordinate_action"],
        "errors": ["ConsensusDecodeError", "ConsensusError", "ProposalConflict", "QuorumSpecError"],
        "locks": ["Lease", "LockTable"],
        "messages": ["Ballot", "Decided", "ExecState", "Execution", "Executor", "Propose"],
        "model": [
            "DIMENSIONS",
            "Choice",
            "Decision",
            "Outcome",
            "Proposal",
            "Scores",
            "Summary",
            "Urgency",
            "Vote",
        ],
        "novelty": ["NoveltyTracker"],
        "policy": ["Thresholds", "Verdict", "VotePolicy"],
        "quorum": ["QuorumKind", "QuorumRule", "parse_quorum"],
        "record": ["VOTER_ROLE", "VOTERS_KEY", "DecisionLog", "DecisionRetention"],
        "round": ["Round"],
        "scorer": [
            "DEFAULT_ACTIONS",
            "DEFAULT_PRIORITY",
            "DEFAULT_RELEVANCE",
            "ActionProfile",
            "Scorer",
            "ScorerConfig",
            "VoterContext",
            "Weights",
        ],
        "service": ["VoterService", "roll_context"],
        "subjects": ["ConsensusSubjects"],
        "tally": ["Tally", "decide", "tally", "verify"],
        "voterstate": ["VoterSettings", "VoterState"],
    },
)

__all__ = [
    "DEFAULT_ACTIONS",
    "DEFAULT_PRIORITY",
    "DEFAULT_RELEVANCE",
    "DIMENSIONS",
    "VOTERS_KEY",
    "VOTER_ROLE",
    "ActionProfile",
    "Ballot",
    "Choice",
    "ConsensusDecodeError",
    "ConsensusError",
    "ConsensusSubjects",
    "Coordination",
    "Coordinator",
    "Decided",
    "Decision",
    "DecisionLog",
    "DecisionRetention",
    "ExecState",
    "Execution",
    "Executor",
    "Lease",
    "LockTable",
    "NoveltyTracker",
    "Outcome",
    "Proposal",
    "ProposalConflict",
    "Propose",
    "QuorumKind",
    "QuorumRule",
    "QuorumSpecError",
    "Round",
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
    "VoterService",
    "VoterSettings",
    "VoterState",
    "Weights",
    "coordinate_action",
    "decide",
    "parse_quorum",
    "roll_context",
    "tally",
    "verify",
]
