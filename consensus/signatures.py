"""Identity signatures on the consensus records (pure, no I/O): who signs which record,
and whether a record counts. The rules live here once; the coordinator, the voters, the
executors and the decision log only call them.

    Vote       record type "ballot"     signed by vote.voter (or with several of its
                                        ballots: "batch" over their digests)
    Decided    record type "decision"   signed by decided.by, its proposal's proposer
    Execution  record type "execution"  signed by execution.executor (result included)

Each signature covers the record's wire form without its "sig" (amcp.attest), so a
Decided's signature covers its ballots and theirs. `identity=None` signs nothing and
`verifier=None` checks nothing (identities off: every record counts, as before). The
authority of a commit is its ballots: a reader re-tallies it from the ballots whose
signatures verify, and a decision that does not follow from them is refused. A commit may
come unsigned (a CLI proposer may have no identity); any other outcome also rests on the
members its proposer names, so with identities on it needs the proposer's signature.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

import consensus._validate as check
from amcp.attest import (
    SIG,
    IdentityVerdict,
    IdentityVerifier,
    RecordType,
    sign,
    sign_batch,
    signing_input,
)
from amcp.identity import Identity
from consensus.errors import ConsensusError
from consensus.messages import Decided, Execution
from consensus.model import BATCH_KEY, MAX_BATCH, Outcome, Vote
from consensus.quorum import parse_quorum
from consensus.tally import tally, verify

__all__ = [
    "VOTER_ROLE",
    "ballot_digest",
    "check_decided",
    "check_execution",
    "check_member",
    "check_vote",
    "refusal",
    "sign_decided",
    "sign_execution",
    "sign_vote",
    "sign_votes",
    "verified_votes",
]


S = TypeVar("S", Vote, Execution)

VOTER_ROLE = "s5"
"""The roster role a member needs to count as a voter when identities are checked: a
signed member record alone would let any insider sign itself into the roll."""
VOTER_NOT_GRANTED = "identity_voter_not_granted"


def _content(record: Vote | Decided | Execution) -> dict[str, Any]:
    wire = record.to_wire()  # a fresh dict: no copy needed to leave out the signature
    del wire[SIG]
    wire.pop(BATCH_KEY, None)  # a batch-signed ballot's digests: how it was signed, not what
    return wire


# The records here are validated dataclasses (built by our code or decoded strictly from
# the wire), so their wire forms are plain data by construction: the signer and the
# verifier skip attest's canonical-form walk (plain=True). Every signature is still
# checked over the same canonical bytes.


def _signed(identity: Identity | None, record: S, record_type: RecordType, signer: str) -> S:
    """`record` with `identity`'s signature as `signer` in its `sig`."""
    if identity is None:
        return record
    if identity.agent_id != signer:
        raise ConsensusError(f"{identity.agent_id} cannot sign a {record_type} of {signer}")
    signature = sign(identity, record_type, _content(record), plain=True)
    return check.evolve(record, sig=check.signature("sig", signature))


def _check(
    verifier: IdentityVerifier | None, record: Vote | Execution, record_type: str, signer: str
) -> IdentityVerdict:
    if verifier is None:
        return IdentityVerdict.OK
    return verifier.verify(record_type, signer, _content(record), record.sig, plain=True)


def sign_vote(identity: Identity | None, vote: Vote) -> Vote:
    """`vote` signed by its voter (`identity` must be the voter's); unchanged without one."""
    return _signed(identity, vote, "ballot", vote.voter)


def ballot_digest(vote: Vote) -> bytes:
    """SHA-256 of the bytes a lone signature of `vote` would cover: its entry in a batch."""
    content = signing_input("ballot", vote.voter, _content(vote), plain=True)
    return hashlib.sha256(content).digest()


def sign_votes(identity: Identity | None, votes: Sequence[Vote]) -> list[Vote]:
    """`votes` (all `identity`'s, distinct) signed together: one Ed25519 signature over the
    batch of their digests (attest.sign_batch), set on each with the digests in `batch`,
    so each is checked alone, as a lone ballot is. One vote is signed alone (sign_vote);
    more than MAX_BATCH in batches of MAX_BATCH. Unchanged without an identity."""
    if identity is None:
        return list(votes)
    if len(votes) == 1:
        return [sign_vote(identity, votes[0])]
    signed: list[Vote] = []
    for start in range(0, len(votes), MAX_BATCH):
        group = votes[start : start + MAX_BATCH]
        for vote in group:
            if vote.voter != identity.agent_id:
                raise ConsensusError(f"{identity.agent_id} cannot sign a ballot of {vote.voter}")
        digests = tuple(ballot_digest(vote) for vote in group)
        if len(set(digests)) != len(digests):
            raise ConsensusError("the same ballot twice in one batch")
        signature = sign_batch(identity, [("ballot", digest) for digest in digests])
        sig = check.signature("sig", signature)
        signed += [check.evolve(vote, sig=sig, batch=digests) for vote in group]
    return signed


def check_vote(verifier: IdentityVerifier | None, vote: Vote) -> IdentityVerdict:
    """Whether `vote` carries its voter's identity signature (OK when nothing is checked):
    its own, or its batch's, which must list this vote's digest. A batch's signature is
    verified once per process (the verifier's cache): its other ballots cost a hash."""
    if verifier is None or not vote.batch:
        return _check(verifier, vote, "ballot", vote.voter)
    if ballot_digest(vote) not in vote.batch:  # mutated, or lifted from another batch
        verifier.refused[IdentityVerdict.BAD_SIGNATURE.value] += 1
        return IdentityVerdict.BAD_SIGNATURE
    items = [("ballot", digest) for digest in vote.batch]  # validated 32-byte digests
    return verifier.verify_batch(vote.voter, items, vote.sig, plain=True)


def verified_votes(
    verifier: IdentityVerifier | None, votes: Iterable[Vote]
) -> tuple[tuple[Vote, ...], Counter[str]]:
    """The votes whose signatures verify, and the others counted by `identity_<verdict>`."""
    kept: list[Vote] = []
    refused: Counter[str] = Counter()
    for vote in votes:
        verdict = check_vote(verifier, vote)
        if verdict is IdentityVerdict.OK:
            kept.append(vote)
        else:
            refused[f"identity_{verdict}"] += 1
    return tuple(kept), refused


def sign_decided(identity: Identity | None, decided: Decided) -> Decided:
    """`decided` signed by its proposal's proposer; unchanged without an identity."""
    if identity is None:
        return decided
    if identity.agent_id != decided.proposal.proposer:
        raise ConsensusError(f"{identity.agent_id} cannot sign a decision of another proposer")
    content = {**_content(decided), "by": identity.agent_id}
    signature = sign(identity, "decision", content, plain=True)
    # `by` is the proposal's proposer (checked above), a valid id
    return check.evolve(decided, by=identity.agent_id, sig=check.signature("sig", signature))


def check_decided(verifier: IdentityVerifier | None, decided: Decided) -> IdentityVerdict:
    """The proposer's signature of `decided`, if it has one: OK when unsigned (the ballots
    are checked by `refusal`), else whether it is the proposer's and verifies."""
    if verifier is None or not decided.sig:
        return IdentityVerdict.OK
    # checked as the proposer's: a signature made as anyone else (`by` another id) fails
    signer = decided.proposal.proposer
    return verifier.verify("decision", signer, _content(decided), decided.sig, plain=True)


def check_member(
    verifier: IdentityVerifier | None, agent_id: str, record: Mapping[str, Any]
) -> str | None:
    """Why the member record in field `agent_id` of the member map does not count as it
    claims, or None when it does. `identity_<verdict>`: it does not count at all (not
    signed by `agent_id` for a role the roster grants it); VOTER_NOT_GRANTED: it counts as
    a member but not as the voter it says it is (the roster does not grant VOTER_ROLE).
    The decision log's roll and the agents' member list both apply this one rule."""
    if verifier is None:
        return None
    role = record.get("role")
    verdict = verifier.verify_record(
        "member", agent_id, record, role=role if isinstance(role, str) else ""
    )
    if verdict is not IdentityVerdict.OK:
        return f"identity_{verdict}"
    if record.get("voter") is True:
        entry = verifier.roster.get(agent_id)
        if entry is None or VOTER_ROLE not in entry.roles:
            return VOTER_NOT_GRANTED
    return None


def refusal(
    verifier: IdentityVerifier | None,
    decided: Decided,
    voters: Iterable[str] | None = None,
) -> str | None:
    """Why `decided` must not be used, or None: its own members and ballots must give its
    outcome (tally.verify); with a verifier, its signature (required unless it commits)
    must verify and the ballots whose signatures verify must still give that outcome.
    With `voters` (an executor's own roll) it is re-derived among them instead."""
    decision = decided.decision
    if not verify(decision):
        return "unverifiable_decision"
    verdict = check_decided(verifier, decided)
    if verdict is not IdentityVerdict.OK:
        return f"identity_{verdict}"
    if verifier is not None and not decided.sig and decision.outcome is not Outcome.COMMITTED:
        # only a commit's ballots prove it; a rejection or no quorum also rests on the
        # members it names (none: no quorum), which only its proposer's signature vouches
        # for. Unsigned, it could end the voters' leases of a proposal still in flight.
        return "identity_unsigned"
    votes, _ = verified_votes(verifier, decision.votes)
    members = decision.members if voters is None else tuple(voters)
    if voters is None and len(votes) == len(decision.votes):
        return None  # every ballot verified: tally.verify above settled it
    again = tally(decided.id, members, parse_quorum(decision.quorum), votes, closed=True)
    if again.outcome is not decision.outcome:
        return "identity_unverified_ballots" if verifier is not None else "not_derived"
    return None


def sign_execution(identity: Identity | None, execution: Execution) -> Execution:
    """`execution` signed by its executor; unchanged without an identity."""
    return _signed(identity, execution, "execution", execution.executor)


def check_execution(verifier: IdentityVerifier | None, execution: Execution) -> IdentityVerdict:
    """Whether `execution` carries its executor's identity signature (OK when unchecked)."""
    return _check(verifier, execution, "execution", execution.executor)
