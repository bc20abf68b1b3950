"""The consensus records: proposals, scores, votes and decisions, and their wire form.

Plain frozen dataclasses that validate on construction, so an invalid record cannot exist.
`to_wire()` gives a msgpack-able dict; `from_wire()` checks a decoded dict strictly (exact
keys, exact types, ranges) and raises ConsensusDecodeError and nothing else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from types import MappingProxyType
from typing import Any, Self

import consensus._validate as check
from consensus.errors import ConsensusDecodeError, ConsensusError
from consensus.quorum import parse_quorum

__all__ = [
    "DIMENSIONS",
    "Choice",
    "Decision",
    "Outcome",
    "Proposal",
    "Scores",
    "Summary",
    "Urgency",
    "Vote",
]

MAX_ID_LENGTH = 256
MAX_REASON_LENGTH = 1024
MAX_PAYLOAD_DEPTH = 16
MAX_MS = 2**63 - 1
DIMENSIONS = ("urgency", "importance", "risk", "confidence", "novelty")
"""The five attention dimensions, in their canonical order."""


class Urgency(StrEnum):
    """How soon the proposer needs the action; CRITICAL lets a risky action pass the policy."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    CRITICAL = "critical"


class Choice(StrEnum):
    """A voter's ballot."""

    YES = "yes"
    NO = "no"
    ABSTAIN = "abstain"


class Outcome(StrEnum):
    """Where a vote stands. PENDING is never part of a Decision."""

    PENDING = "pending"
    COMMITTED = "committed"
    REJECTED = "rejected"
    NO_QUORUM = "no_quorum"


@dataclass(frozen=True)
class Scores:
    """The five attention dimensions of one voter on one proposal, each in [0, 1]."""

    urgency: float
    importance: float
    risk: float
    confidence: float
    novelty: float

    def __post_init__(self) -> None:
        for name in DIMENSIONS:
            object.__setattr__(self, name, check.unit(name, getattr(self, name)))

    def to_wire(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in DIMENSIONS}

    @classmethod
    def from_wire(cls, data: object) -> Self:
        with _decoding("scores"):
            return cls(**_record(data, DIMENSIONS))


@dataclass(frozen=True, kw_only=True)
class Proposal:
    """A critical action put to the vote.

    `resource` names what the action touches (at most one proposal per resource is in flight,
    see locks.py); `quorum` is a spec for quorum.parse_quorum; times are epoch milliseconds.
    The payload is deep-frozen: mappings become read-only, lists become tuples.
    """

    id: str
    action: str
    proposer: str
    created_ms: int
    deadline_ms: int
    payload: Mapping[str, Any] = field(default_factory=dict, hash=False)
    resource: str | None = None
    quorum: str = "majority"
    urgency: Urgency = Urgency.NORMAL

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "id", check.text("id", self.id, MAX_ID_LENGTH))
        set_(self, "action", check.text("action", self.action, MAX_ID_LENGTH))
        set_(self, "proposer", check.text("proposer", self.proposer, MAX_ID_LENGTH))
        set_(self, "created_ms", check.integer("created_ms", self.created_ms, 0, MAX_MS))
        set_(self, "deadline_ms", check.integer("deadline_ms", self.deadline_ms, 0, MAX_MS))
        if self.deadline_ms <= self.created_ms:
            raise ConsensusError("deadline_ms must be after created_ms")
        if not isinstance(self.payload, Mapping):
            raise ConsensusError(f"payload must be a mapping, got {type(self.payload).__name__}")
        set_(self, "payload", _freeze("payload", self.payload, 0))
        if self.resource is not None:
            set_(self, "resource", check.text("resource", self.resource, MAX_ID_LENGTH))
        parse_quorum(self.quorum)
        set_(self, "urgency", check.enum(Urgency, "urgency", self.urgency))

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "action": self.action,
            "payload": _thaw(self.payload),
            "resource": self.resource,
            "quorum": self.quorum,
            "urgency": str(self.urgency),
            "proposer": self.proposer,
            "created_ms": self.created_ms,
            "deadline_ms": self.deadline_ms,
        }

    @classmethod
    def from_wire(cls, data: object) -> Self:
        with _decoding("proposal"):
            return cls(**_record(data, _PROPOSAL_KEYS))

    @cached_property
    def digest(self) -> bytes:
        """SHA-256 of what the proposal asks for in canonical form (docs/PROTOCOL.md,
        "Consensus records"): its id, action, payload, resource, quorum and urgency, the
        fields `ProposalConflict` compares; not its proposer or times, so a restarted or
        racing proposer of the same request counts the same ballots. Every ballot on it
        carries and signs this digest: it counts only for the request its voter judged,
        not for another action, payload, resource or quorum under the same id. Computed
        once (the proposal is frozen)."""
        from amcp.attest import PROPOSAL, signing_input  # not at import: `amcp --help` is quick

        wire = self.to_wire()
        request = {key: wire[key] for key in _REQUEST_KEYS}
        # no signer: the proposer is not part of the request
        return hashlib.sha256(signing_input(PROPOSAL, "", request, plain=True)).digest()


_REQUEST_KEYS = ("id", "action", "payload", "resource", "quorum", "urgency")  # what is asked
_PROPOSAL_KEYS = (*_REQUEST_KEYS, "proposer", "created_ms", "deadline_ms")


@dataclass(frozen=True, kw_only=True)
class Vote:
    """One voter's ballot on one proposal, with the scores and reason behind it.

    `proposal_digest` is the digest of the request the voter judged (Proposal.digest) and
    `deadline_ms` that proposal's deadline: signed with the rest, they bind the ballot to
    that action, payload, resource and quorum, so it cannot be counted for another request
    under the same id, and they bound the execution window of what it commits
    (Decided.judged_deadline_ms), so a rewritten deadline cannot run it again later.
    `combined` is the voter's weighted attention score; the weighted quorum counts a yes
    vote with this weight. `sig`: the voter's identity signature over the rest of the wire
    form (consensus.signatures), empty when the voter has no identity. `batch`: empty for
    a ballot signed alone; else `sig` is one signature over several ballots of the voter
    (pipelined together), `batch` their digests in order, this one's among them.
    """

    proposal_id: str
    proposal_digest: bytes
    deadline_ms: int
    voter: str
    choice: Choice
    scores: Scores
    combined: float
    reason: str = ""
    sig: bytes = b""
    batch: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "batch", _digests(self.batch) if self.batch else ())
        set_(self, "proposal_id", check.text("proposal_id", self.proposal_id, MAX_ID_LENGTH))
        _digest("proposal_digest", self.proposal_digest)
        set_(self, "deadline_ms", check.integer("deadline_ms", self.deadline_ms, 0, MAX_MS))
        set_(self, "voter", check.text("voter", self.voter, MAX_ID_LENGTH))
        set_(self, "choice", check.enum(Choice, "choice", self.choice))
        if not isinstance(self.scores, Scores):
            raise ConsensusError(f"scores must be Scores, got {type(self.scores).__name__}")
        set_(self, "combined", check.unit("combined", self.combined))
        set_(self, "reason", check.text("reason", self.reason, MAX_REASON_LENGTH, empty_ok=True))
        set_(self, "sig", check.signature("sig", self.sig))

    def to_wire(self) -> dict[str, Any]:
        return {
            "proposal_id": self.proposal_id,
            "proposal_digest": self.proposal_digest,
            "deadline_ms": self.deadline_ms,
            "voter": self.voter,
            "choice": str(self.choice),
            "scores": self.scores.to_wire(),
            "combined": self.combined,
            "reason": self.reason,
            "sig": self.sig,
        } | ({BATCH_KEY: list(self.batch)} if self.batch else {})

    @classmethod
    def from_wire(cls, data: object) -> Self:
        with _decoding("vote"):
            batch: object = ()
            if isinstance(data, Mapping) and BATCH_KEY in data:  # batch-signed ballots only
                data = dict(data)
                batch = data.pop(BATCH_KEY)
            fields = _record(data, _VOTE_KEYS, UNSIGNED)
            fields["scores"] = Scores.from_wire(fields["scores"])
            return cls(**fields, batch=batch)  # type: ignore[arg-type]


_VOTE_KEYS = (
    "proposal_id", "proposal_digest", "deadline_ms", "voter", "choice", "scores", "combined",
    "reason", "sig",
)  # fmt: skip
UNSIGNED = {"sig": b""}  # records written before identity signatures have no "sig"
BATCH_KEY = "batch"  # on the wire only when a ballot was signed in a batch
DIGEST_SIZE = 32
MAX_BATCH = 16
"""At most this many ballots share one signature: each carries every digest of its batch
(32 bytes each) into the decision record, so the bound keeps a decision small."""


def _digest(name: str, value: object) -> None:
    if type(value) is not bytes or len(value) != DIGEST_SIZE:
        raise ConsensusError(f"{name} must be a {DIGEST_SIZE}-byte digest")


def _digests(value: object) -> tuple[bytes, ...]:
    """A ballot batch: 1 to MAX_BATCH distinct SHA-256 digests."""
    batch = _sequence("batch", value)
    if len(batch) > MAX_BATCH:
        raise ConsensusError(f"batch holds {len(batch)} digests, at most {MAX_BATCH}")
    for digest in batch:
        if type(digest) is not bytes or len(digest) != DIGEST_SIZE:
            raise ConsensusError(f"batch entries must be {DIGEST_SIZE}-byte digests")
    if len(set(batch)) != len(batch):
        raise ConsensusError("batch digests must be distinct")
    return batch


@dataclass(frozen=True, kw_only=True)
class Summary:
    """The counted ballots of a tally.

    Counts are per choice; weights are the sums of the voters' combined scores per choice,
    whatever the rule. `needed` is the yes support the rule asks for (see quorum.py).
    """

    yes: int
    no: int
    abstain: int
    yes_weight: float
    no_weight: float
    abstain_weight: float
    needed: float

    def __post_init__(self) -> None:
        for name in ("yes", "no", "abstain"):
            object.__setattr__(self, name, check.integer(name, getattr(self, name), 0, MAX_MS))
        for name in ("yes_weight", "no_weight", "abstain_weight", "needed"):
            object.__setattr__(self, name, check.nonnegative(name, getattr(self, name)))

    def to_wire(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _SUMMARY_KEYS}

    @classmethod
    def from_wire(cls, data: object) -> Self:
        with _decoding("summary"):
            return cls(**_record(data, _SUMMARY_KEYS))


_SUMMARY_KEYS = ("yes", "no", "abstain", "yes_weight", "no_weight", "abstain_weight", "needed")


@dataclass(frozen=True, kw_only=True)
class Decision:
    """The final outcome of a proposal, with everything needed to re-derive it.

    `members` (sorted) and `votes` (the counted ballots, one per voter, sorted by voter) let
    any member recompute the outcome with tally.verify().
    """

    proposal_id: str
    outcome: Outcome
    quorum: str
    members: tuple[str, ...]
    votes: tuple[Vote, ...]
    summary: Summary

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "proposal_id", check.text("proposal_id", self.proposal_id, MAX_ID_LENGTH))
        outcome = check.enum(Outcome, "outcome", self.outcome)
        if outcome is Outcome.PENDING:
            raise ConsensusError("a decision cannot be pending")
        set_(self, "outcome", outcome)
        parse_quorum(self.quorum)
        if isinstance(self.members, set | frozenset):
            set_(self, "members", tuple(self.members))
        members = _sequence("members", self.members)
        members = tuple(sorted(check.text("member", m, MAX_ID_LENGTH) for m in members))
        if len(set(members)) != len(members):
            raise ConsensusError("members must be unique")
        set_(self, "members", members)
        votes = _sequence("votes", self.votes)
        if not all(isinstance(v, Vote) for v in votes):
            raise ConsensusError("votes must be Vote records")
        votes = tuple(sorted(votes, key=lambda v: v.voter))
        set_(self, "votes", votes)
        self._check_votes()
        if not isinstance(self.summary, Summary):
            raise ConsensusError(f"summary must be Summary, got {type(self.summary).__name__}")
        counts = [sum(v.choice is c for v in votes) for c in Choice]
        if counts != [self.summary.yes, self.summary.no, self.summary.abstain]:
            raise ConsensusError("summary counts do not match the votes")

    def _check_votes(self) -> None:
        voters = [v.voter for v in self.votes]
        if len(set(voters)) != len(voters):
            raise ConsensusError("a decision counts at most one vote per voter")
        if not set(voters) <= set(self.members):
            raise ConsensusError("a decision counts only votes of members")
        if any(v.proposal_id != self.proposal_id for v in self.votes):
            raise ConsensusError("a decision counts only votes on its own proposal")

    def to_wire(self) -> dict[str, Any]:
        return {
            "proposal_id": self.proposal_id,
            "outcome": str(self.outcome),
            "quorum": self.quorum,
            "members": list(self.members),
            "votes": [v.to_wire() for v in self.votes],
            "summary": self.summary.to_wire(),
        }

    @classmethod
    def from_wire(cls, data: object) -> Self:
        with _decoding("decision"):
            fields = _record(data, _DECISION_KEYS)
            fields["votes"] = tuple(Vote.from_wire(v) for v in _sequence("votes", fields["votes"]))
            fields["summary"] = Summary.from_wire(fields["summary"])
            return cls(**fields)


_DECISION_KEYS = ("proposal_id", "outcome", "quorum", "members", "votes", "summary")


class _decoding:  # lower case: used as `with _decoding(...)`, like a function
    """Turn any validation failure while decoding into ConsensusDecodeError. A class, not
    @contextmanager: it wraps every record decoded off the bus (three per ballot), and
    a generator per use was a quarter of a ballot's decoding."""

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> bool:
        if isinstance(exc, ConsensusError) and not isinstance(exc, ConsensusDecodeError):
            raise ConsensusDecodeError(f"bad {self.what}: {exc}") from exc
        return False  # no error, or one that is already a decode error (or not ours)


_KEYSETS: dict[tuple[str, ...], frozenset[str]] = {}  # a record type's keys, as a set


def _record(
    data: object, keys: tuple[str, ...], defaults: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The fields of a wire map that has exactly `keys` (those in `defaults` may be
    missing and then take their default)."""
    if not isinstance(data, Mapping):
        raise ConsensusError(f"expected a map, got {type(data).__name__}")
    keyset = _KEYSETS.get(keys)
    if keyset is None:
        keyset = _KEYSETS[keys] = frozenset(keys)
    if data.keys() == keyset:  # the usual case: every key, no other
        return {key: data[key] for key in keys}
    if defaults:
        data = {**defaults, **data}
    got = set(data)
    if got != set(keys):
        missing = [f"missing {k!r}" for k in keys if k not in got]
        extra = sorted(f"unexpected {check.show(k)}" for k in got - set(keys))
        raise ConsensusError("wrong fields: " + ", ".join(missing + extra))
    return {key: data[key] for key in keys}


def _sequence(name: str, value: object) -> tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        raise ConsensusError(f"{name} must be a list, got {type(value).__name__}")
    return tuple(value)


def _freeze(name: str, value: object, depth: int) -> Any:
    """Check that a payload value is plain msgpack data and make it immutable."""
    if depth > MAX_PAYLOAD_DEPTH:
        raise ConsensusError(f"{name} nests deeper than {MAX_PAYLOAD_DEPTH} levels")
    if value is None or isinstance(value, bool | str | bytes):
        return value
    if isinstance(value, int):
        if not -(2**63) <= value < 2**64:
            raise ConsensusError(f"{name} has an integer outside the msgpack range")
        return value
    if isinstance(value, float):
        return check.real(name, value)
    if isinstance(value, list | tuple):
        return tuple(_freeze(name, item, depth + 1) for item in value)
    if isinstance(value, Mapping):
        if not all(isinstance(key, str) for key in value):
            raise ConsensusError(f"{name} map keys must be strings")
        return MappingProxyType({k: _freeze(name, v, depth + 1) for k, v in value.items()})
    raise ConsensusError(f"{name} holds an unsupported {type(value).__name__}")


def _thaw(value: Any) -> Any:
    """The msgpack-able copy of a frozen payload value."""
    if isinstance(value, tuple):
        return [_thaw(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _thaw(item) for key, item in value.items()}
    return value
