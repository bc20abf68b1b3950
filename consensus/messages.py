"""The protocol's messages and log records: what proposers, voters and executors tell
each other.

    Propose    proposer -> every voter (bus)     a Proposal and the subject for ballots
    Ballot     voter -> proposer (bus)           a Vote, or the Decided record if known
    Decided    proposer -> decision log          the Decision, its Proposal, its executor
    Execution  executor -> decision log          the claim, then the outcome (the ack)

Like the records of model.py, each is a frozen dataclass validated on construction, with
`to_wire()` (a plain dict for msgpack) and a strict `from_wire()` that raises
ConsensusDecodeError and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Self

import consensus._validate as check
from consensus.errors import ConsensusError
from consensus.model import (
    MAX_ID_LENGTH,
    MAX_MS,
    MAX_REASON_LENGTH,
    UNSIGNED,
    Decision,
    Outcome,
    Proposal,
    Vote,
    _decoding,
    _freeze,
    _record,
    _thaw,
)

__all__ = ["Ballot", "Decided", "ExecState", "Execution", "Executor", "Propose"]

MAX_SUBJECT_LENGTH = 256


@dataclass(frozen=True)
class Executor:
    """Who carries out a committed action: `tool` on the agent `agent`."""

    agent: str
    tool: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "agent", check.text("agent", self.agent, MAX_ID_LENGTH))
        object.__setattr__(self, "tool", check.text("tool", self.tool, MAX_ID_LENGTH))

    def to_wire(self) -> dict[str, Any]:
        return {"agent": self.agent, "tool": self.tool}

    @classmethod
    def from_wire(cls, data: object) -> Self:
        with _decoding("executor"):
            return cls(**_record(data, ("agent", "tool")))


@dataclass(frozen=True, kw_only=True)
class Propose:
    """A proposal put to the voters; ballots go to `reply`, the proposer's own subject."""

    proposal: Proposal
    reply: str

    def __post_init__(self) -> None:
        if not isinstance(self.proposal, Proposal):
            raise ConsensusError("proposal must be a Proposal")
        object.__setattr__(self, "reply", check.text("reply", self.reply, MAX_SUBJECT_LENGTH))

    def to_wire(self) -> dict[str, Any]:
        return {"proposal": self.proposal.to_wire(), "reply": self.reply}

    @classmethod
    def from_wire(cls, data: object) -> Self:
        with _decoding("propose"):
            fields = _record(data, ("proposal", "reply"))
            return cls(proposal=Proposal.from_wire(fields["proposal"]), reply=fields["reply"])


@dataclass(frozen=True, kw_only=True)
class Decided:
    """A decision with its proposal and, for a committed action that has one, its executor.

    What the proposer writes to the decision log once it has decided (the log replicates it
    to every member), so a proposal id proposed again gets this same record back. `by` and
    `sig`: the proposer's identity signature over the rest (consensus.signatures), both
    empty when the proposer has no identity (the ballots are the authority either way).
    """

    proposal: Proposal
    decision: Decision
    executor: Executor | None
    decided_ms: int
    by: str = ""
    sig: bytes = b""

    def __post_init__(self) -> None:
        if not isinstance(self.proposal, Proposal) or not isinstance(self.decision, Decision):
            raise ConsensusError("a Decided record needs a Proposal and a Decision")
        if self.decision.proposal_id != self.proposal.id:
            raise ConsensusError("the decision is on another proposal")
        if self.decision.quorum != self.proposal.quorum:
            raise ConsensusError("the decision's quorum is not the proposal's")
        digest = self.proposal.digest
        if any(vote.proposal_digest != digest for vote in self.decision.votes):
            # ballots judged another proposal under this id: they prove nothing of this one
            raise ConsensusError("a ballot in the decision is on another version of its proposal")
        if self.executor is not None:
            if not isinstance(self.executor, Executor):
                raise ConsensusError("executor must be an Executor or None")
            if self.decision.outcome is not Outcome.COMMITTED:
                raise ConsensusError("only a committed decision has an executor")
        object.__setattr__(
            self, "decided_ms", check.integer("decided_ms", self.decided_ms, 0, MAX_MS)
        )
        object.__setattr__(self, "by", check.text("by", self.by, MAX_ID_LENGTH, empty_ok=True))
        object.__setattr__(self, "sig", check.signature("sig", self.sig))
        if bool(self.by) != bool(self.sig):
            raise ConsensusError("a Decided record has both `by` and `sig` or neither")

    @property
    def id(self) -> str:
        return self.proposal.id

    @property
    def judged_deadline_ms(self) -> int:
        """The earliest deadline among the proposal's and those its ballots were cast on
        (each signed in its ballot): the deadline its execution window runs from, which
        rewriting the record's proposal cannot move later."""
        return min((self.proposal.deadline_ms, *(v.deadline_ms for v in self.decision.votes)))

    def to_wire(self) -> dict[str, Any]:
        return {
            "proposal": self.proposal.to_wire(),
            "decision": self.decision.to_wire(),
            "executor": None if self.executor is None else self.executor.to_wire(),
            "decided_ms": self.decided_ms,
            "by": self.by,
            "sig": self.sig,
        }

    @classmethod
    def from_wire(cls, data: object) -> Self:
        with _decoding("decided"):
            fields = _record(data, _DECIDED_KEYS, _UNSIGNED_DECIDED)
            executor = fields["executor"]
            return cls(
                proposal=Proposal.from_wire(fields["proposal"]),
                decision=Decision.from_wire(fields["decision"]),
                executor=None if executor is None else Executor.from_wire(executor),
                decided_ms=fields["decided_ms"],
                by=fields["by"],
                sig=fields["sig"],
            )


_DECIDED_KEYS = ("proposal", "decision", "executor", "decided_ms", "by", "sig")
_UNSIGNED_DECIDED = {**UNSIGNED, "by": ""}


@dataclass(frozen=True, kw_only=True)
class Ballot:
    """A voter's answer to a Propose: its vote, or the decision it already knows."""

    vote: Vote | None = None
    decided: Decided | None = None

    def __post_init__(self) -> None:
        if (self.vote is None) == (self.decided is None):
            raise ConsensusError("a ballot carries either a vote or a known decision")
        if self.vote is not None and not isinstance(self.vote, Vote):
            raise ConsensusError("vote must be a Vote")
        if self.decided is not None and not isinstance(self.decided, Decided):
            raise ConsensusError("decided must be a Decided record")

    @property
    def proposal_id(self) -> str:
        return self.vote.proposal_id if self.vote is not None else self.decided.id  # type: ignore[union-attr]

    def to_wire(self) -> dict[str, Any]:
        return {
            "vote": None if self.vote is None else self.vote.to_wire(),
            "decided": None if self.decided is None else self.decided.to_wire(),
        }

    @classmethod
    def from_wire(cls, data: object) -> Self:
        with _decoding("ballot"):
            fields = _record(data, ("vote", "decided"))
            vote, decided = fields["vote"], fields["decided"]
            return cls(
                vote=None if vote is None else Vote.from_wire(vote),
                decided=None if decided is None else Decided.from_wire(decided),
            )


class ExecState(StrEnum):
    """Where an execution stands. Only RUNNING is not final."""

    RUNNING = "running"  # claimed; the tool is running (or the executor died while it ran)
    DONE = "done"
    FAILED = "failed"  # the tool ran and failed
    REFUSED = "refused"  # the executor could not re-derive the commit from its own members
    EXPIRED = "expired"  # the decision reached the executor after its execution window


@dataclass(frozen=True, kw_only=True)
class Execution:
    """An executor's claim on a committed proposal and, once final, its outcome.

    Kept in the decision log: the claim is written before the tool runs, so the proposal
    never runs twice, and the final record is the acknowledgement. `sig`: the executor's
    identity signature over the rest, its result included (empty without an identity).
    """

    proposal_id: str
    executor: str
    tool: str
    state: ExecState
    started_ms: int
    finished_ms: int = 0
    result: Any = None
    error: str = ""
    sig: bytes = b""

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "proposal_id", check.text("proposal_id", self.proposal_id, MAX_ID_LENGTH))
        set_(self, "executor", check.text("executor", self.executor, MAX_ID_LENGTH))
        set_(self, "tool", check.text("tool", self.tool, MAX_ID_LENGTH))
        set_(self, "state", check.enum(ExecState, "state", self.state))
        set_(self, "started_ms", check.integer("started_ms", self.started_ms, 0, MAX_MS))
        set_(self, "finished_ms", check.integer("finished_ms", self.finished_ms, 0, MAX_MS))
        set_(self, "result", _freeze("result", self.result, 0))
        set_(self, "error", check.text("error", self.error, MAX_REASON_LENGTH, empty_ok=True))
        set_(self, "sig", check.signature("sig", self.sig))

    @property
    def final(self) -> bool:
        return self.state is not ExecState.RUNNING

    def to_wire(self) -> dict[str, Any]:
        return {
            "proposal_id": self.proposal_id,
            "executor": self.executor,
            "tool": self.tool,
            "state": str(self.state),
            "started_ms": self.started_ms,
            "finished_ms": self.finished_ms,
            "result": _thaw(self.result),
            "error": self.error,
            "sig": self.sig,
        }

    @classmethod
    def from_wire(cls, data: object) -> Self:
        with _decoding("execution"):
            return cls(**_record(data, _EXECUTION_KEYS, UNSIGNED))


_EXECUTION_KEYS = (
    "proposal_id",
    "executor",
    "tool",
    "state",
    "started_ms",
    "finished_ms",
    "result",
    "error",
    "sig",
)
