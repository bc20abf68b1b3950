"""Identity signatures on the consensus records (pure): votes, decisions and executions
round-trip signed through their wire form, any changed field breaks the signature, the
proposer's round and the decision log's readers count only what verifies, each refusal
with its reason, and the voter roll admits only signed members the roster makes voters."""

from __future__ import annotations

import dataclasses
import hashlib
from functools import partial
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amcp.attest import (
    IdentityVerdict,
    IdentityVerifier,
    sign,
    sign_record,
    signing_input,
    unsigned,
)
from amcp.identity import Identity
from amcp.roster import Roster, RosterEntry
from consensus import (
    Choice,
    ConsensusError,
    Decided,
    DecisionLog,
    ExecState,
    Execution,
    Executor,
    Round,
    Scores,
    Vote,
    VoterContext,
    VoterState,
    decide,
)
from consensus.model import MAX_BATCH, Proposal
from consensus.record import VOTERS_KEY, decision_key, execution_key
from consensus.signatures import (
    ballot_digest,
    check_decided,
    check_execution,
    check_vote,
    refusal,
    sign_decided,
    sign_execution,
    sign_vote,
    sign_votes,
    verified_votes,
)
from crdt.wire import pack
from tests.support import factories
from tests.support.vectors import doc_vectors, from_hex

FIVE = ("a", "b", "c", "d", "e")
# Keys are made once: hypothesis varies the records, not the keys.
KEYS = {
    name: Identity.from_seed(name, bytes([n]) * 32)
    for n, name in enumerate((*FIVE, "prop", "s1-x"), start=1)
}
ROLES = {"prop": {"s3"}, "s1-x": {"s1"}}

proposal = partial(factories.proposal, proposer="prop")


def verifier(revoked: tuple[str, ...] = ()) -> IdentityVerifier:
    return IdentityVerifier(
        Roster(
            RosterEntry(k, i.public_key, frozenset(ROLES.get(k, {"s5"})), k in revoked)
            for k, i in KEYS.items()
        )
    )


def vote(voter: str, choice: Choice = Choice.YES, pid: str = "p1", signed: bool = True) -> Vote:
    v = Vote(
        proposal_id=pid,
        proposal_digest=proposal(pid).digest,
        deadline_ms=proposal(pid).deadline_ms,
        voter=voter,
        choice=choice,
        scores=Scores(0.5, 0.5, 0.5, 1.0, 1.0),
        combined=0.7,
        reason="r",
    )
    return sign_vote(KEYS[voter], v) if signed else v


def committed(votes: list[Vote], executor: Executor | None = None, pid: str = "p1") -> Decided:
    p = proposal(pid)
    decision = decide(p, FIVE, votes, now_ms=p.deadline_ms)
    assert decision is not None
    return Decided(proposal=p, decision=decision, executor=executor, decided_ms=p.deadline_ms)


def wire_trip(record: Any) -> Any:
    """Through msgpack and back, as the bus and the decision log carry it."""
    data = msgpack.unpackb(msgpack.packb(record.to_wire()), raw=False)
    return type(record).from_wire(data)


# Round trips and tampering ------------------------------------------------------------

unit = st.floats(0, 1)
texts = st.text(min_size=1, max_size=12)
ints = st.integers(-(2**63), 2**63)  # the msgpack range
votes = st.builds(
    Vote,
    proposal_id=texts,
    proposal_digest=st.binary(min_size=32, max_size=32),
    deadline_ms=st.integers(0, 2**40),
    voter=st.sampled_from(FIVE),
    choice=st.sampled_from(Choice),
    scores=st.builds(Scores, unit, unit, unit, unit, unit),
    combined=unit,
    reason=st.text(max_size=12),
)
executions = st.builds(
    Execution,
    proposal_id=texts,
    executor=st.sampled_from(FIVE),
    tool=texts,
    state=st.sampled_from(ExecState),
    started_ms=st.integers(0, 2**40),
    finished_ms=st.integers(0, 2**40),
    result=st.none() | ints | st.dictionaries(texts, ints | texts, max_size=3),
    error=st.text(max_size=12),
)


def changed(value: Any) -> Any:
    """Another value of the same kind (one a record's field may hold)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, bytes):  # a digest: one bit flipped
        return bytes([value[0] ^ 1]) + value[1:]
    if isinstance(value, float):
        return 0.25 if value != 0.25 else 0.5
    if isinstance(value, int):
        return value + 1
    if isinstance(value, Choice):  # before str: a StrEnum is a str
        return Choice.NO if value is not Choice.NO else Choice.YES
    if isinstance(value, ExecState):
        return ExecState.FAILED if value is not ExecState.FAILED else ExecState.DONE
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, Scores):
        return dataclasses.replace(value, risk=changed(value.risk))
    return {"changed": True}


@settings(max_examples=40, deadline=None)
@given(
    v=votes,
    field=st.sampled_from(
        ["proposal_id", "proposal_digest", "deadline_ms", "choice", "scores", "combined", "reason"]
    ),
)
def test_any_vote_round_trips_signed_and_any_changed_field_breaks_it(v: Vote, field: str) -> None:
    check = verifier()
    signed = wire_trip(sign_vote(KEYS[v.voter], v))
    assert check_vote(check, signed) is IdentityVerdict.OK
    forged = dataclasses.replace(signed, **{field: changed(getattr(signed, field))})
    assert check_vote(check, forged) is IdentityVerdict.BAD_SIGNATURE


@settings(max_examples=40, deadline=None)
@given(e=executions, field=st.sampled_from(["proposal_id", "tool", "state", "result", "error"]))
def test_any_execution_round_trips_signed_and_any_changed_field_breaks_it(
    e: Execution, field: str
) -> None:
    check = verifier()
    signed = wire_trip(sign_execution(KEYS[e.executor], e))
    assert check_execution(check, signed) is IdentityVerdict.OK
    forged = dataclasses.replace(signed, **{field: changed(getattr(signed, field))})
    assert check_execution(check, forged) is IdentityVerdict.BAD_SIGNATURE


@settings(max_examples=25, deadline=None)
@given(
    yes=st.sets(st.sampled_from(FIVE), min_size=3),
    field=st.sampled_from(["decided_ms", "executor", "payload", "ballot"]),
)
def test_any_decided_round_trips_signed_and_any_changed_field_breaks_it(
    yes: set[str], field: str
) -> None:
    check = verifier()
    genuine = committed([vote(v) for v in sorted(yes)], Executor("e", "t"))
    signed = wire_trip(sign_decided(KEYS["prop"], genuine))
    assert (signed.by, check_decided(check, signed)) == ("prop", IdentityVerdict.OK)
    assert refusal(check, signed) is None
    if field == "ballot":  # a ballot swapped for another voter's equal-weight one
        first = signed.decision.votes[0]
        other = dataclasses.replace(first, reason="other")
        decision = dataclasses.replace(signed.decision, votes=(other, *signed.decision.votes[1:]))
        forged = dataclasses.replace(signed, decision=decision)
    elif field == "payload":  # the ballots judged another payload: not even a record
        with pytest.raises(ConsensusError, match="another version of its proposal"):
            dataclasses.replace(signed, proposal=proposal(payload={"rm": "-rf"}))
        return
    elif field == "executor":
        forged = dataclasses.replace(signed, executor=Executor("s1-x", "t"))
    else:
        forged = dataclasses.replace(signed, decided_ms=signed.decided_ms + 1)
    assert check_decided(check, forged) is IdentityVerdict.BAD_SIGNATURE
    assert refusal(check, forged) == "identity_bad_signature"


def test_records_without_the_new_keys_still_decode_as_unsigned() -> None:
    e = Execution(proposal_id="p", executor="a", tool="t", state="done", started_ms=1)
    d = committed([vote(v, signed=False) for v in "abc"])
    for record in (vote("a", signed=False), e, d):
        old = {k: v for k, v in record.to_wire().items() if k not in ("sig", "by")}
        if isinstance(record, Decided):
            old["decision"]["votes"] = [
                {k: v for k, v in b.items() if k != "sig"} for b in old["decision"]["votes"]
            ]
        assert type(record).from_wire(old) == record


def test_signing_needs_the_signers_own_identity_and_none_signs_nothing() -> None:
    with pytest.raises(ConsensusError, match="cannot sign"):
        sign_vote(KEYS["s1-x"], vote("a", signed=False))
    with pytest.raises(ConsensusError, match="cannot sign"):
        sign_decided(KEYS["a"], committed([vote(v) for v in "abc"]))
    unsigned = vote("a", signed=False)
    assert sign_vote(None, unsigned) is unsigned
    with pytest.raises(ConsensusError, match="both `by` and `sig`"):
        dataclasses.replace(committed([vote(v) for v in "abc"]), by="prop")
    with pytest.raises(ConsensusError, match="at most 64"):
        dataclasses.replace(unsigned, sig=bytes(65))


def test_without_a_verifier_nothing_is_checked() -> None:
    assert check_vote(None, vote("a", signed=False)) is IdentityVerdict.OK
    assert refusal(None, committed([vote(v, signed=False) for v in "abc"])) is None


# Ballots and decisions that count ------------------------------------------------------


def test_forged_ballots_are_refused_with_their_reason() -> None:
    check = verifier(revoked=("e",))
    as_a_unsigned = vote("a", signed=False)
    insiders = sign(KEYS["s1-x"], "ballot", unsigned(as_a_unsigned.to_wire()))
    as_a_by_insider = dataclasses.replace(as_a_unsigned, sig=insiders)
    kept, refused = verified_votes(
        check, [vote("b"), as_a_unsigned, as_a_by_insider, vote("e"), vote("c")]
    )
    assert [v.voter for v in kept] == ["b", "c"]
    assert refused == {"identity_bad_signature": 2, "identity_revoked": 1}


def test_the_round_counts_only_identity_signed_ballots() -> None:
    r = Round(proposal(), FIVE, now_ms=1_000, verifier=verifier(revoked=("d",)))
    # two genuine yes of five, and a forged third in c's name: no commit
    r.offer(vote("a"), "a", now_ms=1_001)
    r.offer(vote("b"), "b", now_ms=1_002)
    assert r.offer(vote("c", signed=False), "c", now_ms=1_003) is None
    assert r.offer(vote("d"), "d", now_ms=1_004) is None  # revoked
    assert r.refused == {"identity_bad_signature": 1, "identity_revoked": 1}
    decision = r.offer(vote("c"), "c", now_ms=1_005)
    assert decision is not None and decision.outcome == "committed"
    assert [v.voter for v in decision.votes] == ["a", "b", "c"]


def test_a_decision_stuffed_with_forged_ballots_is_refused() -> None:
    check = verifier()
    forged = committed([vote("a"), vote("b"), vote("c", signed=False)])
    assert refusal(check, forged) == "identity_unverified_ballots"
    # the insider signs the record itself: not the proposer's signature
    content = {**unsigned(forged.to_wire()), "by": "s1-x"}
    sig = sign(KEYS["s1-x"], "decision", content)
    as_insider = dataclasses.replace(forged, by="s1-x", sig=sig)
    assert refusal(check, as_insider) == "identity_bad_signature"
    # an executor re-derives among its own roll: three genuine yes of a roll of seven fail
    genuine = committed([vote(v) for v in "abc"])
    assert refusal(check, genuine) is None
    assert refusal(check, genuine, (*FIVE, "f", "g")) == "identity_unverified_ballots"


def test_an_outcome_other_than_a_commit_needs_its_proposers_signature() -> None:
    """No ballot proves a no-quorum: unsigned, an insider could name no members and end the
    voters' leases of a proposal still in flight."""
    p = proposal()
    nobody = decide(p, (), (), now_ms=p.created_ms)
    assert nobody is not None and nobody.outcome == "no_quorum"
    forged = Decided(proposal=p, decision=nobody, executor=None, decided_ms=1)
    assert refusal(None, forged) is None  # identities off: as before
    assert refusal(verifier(), forged) == "identity_unsigned"
    assert refusal(verifier(), sign_decided(KEYS["prop"], forged)) is None


def test_a_decision_signed_by_another_proposer_does_not_end_the_lease() -> None:
    """The insider proposes nothing; it signs, as its own proposal's proposer, a no-quorum
    on the id in flight: the log lets it through (its signature is its proposer's), the
    voter keeps the lease of the proposal it voted for."""
    state = VoterState("a", identity=KEYS["a"])
    genuine = proposal(resource="db")
    context = VoterContext(role="s5", members=5, live=5, now_ms=2_000)
    ballot = state.vote(genuine, context)
    assert isinstance(ballot, Vote) and ballot.choice is Choice.YES
    assert state.holds(genuine.id, now_ms=2_001)
    theirs = dataclasses.replace(genuine, proposer="s1-x")
    nobody = decide(theirs, (), (), now_ms=theirs.created_ms)
    assert nobody is not None
    forged = Decided(proposal=theirs, decision=nobody, executor=None, decided_ms=2_002)
    forged = sign_decided(KEYS["s1-x"], forged)
    assert refusal(verifier(), forged) is None
    assert state.decided(forged) is False
    assert state.holds(genuine.id, now_ms=2_003) and state.known(genuine.id) is None
    mine = decide(genuine, FIVE, (ballot,), now_ms=genuine.deadline_ms)
    assert mine is not None and mine.outcome == "no_quorum"
    assert state.decided(Decided(proposal=genuine, decision=mine, executor=None, decided_ms=1))
    assert not state.holds(genuine.id, now_ms=2_004)


def test_a_voter_signs_its_ballot_once_and_sends_that_ballot_again() -> None:
    state = VoterState("a", identity=KEYS["a"])
    context = VoterContext(role="s5", members=5, live=5, now_ms=2_000)
    first = state.vote(proposal(), context)
    assert isinstance(first, Vote) and check_vote(verifier(), first) is IdentityVerdict.OK
    assert state.vote(proposal(), dataclasses.replace(context, now_ms=2_001)) is first
    with pytest.raises(ConsensusError, match="identity is b's"):
        VoterState("a", identity=KEYS["b"])


# The decision log's readers ------------------------------------------------------------


class LocalStore:
    """The two calls DecisionLog's readers make of a ContextStore replica, over a dict."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def limit(self, prefix: str, max_keys: int) -> None:
        pass

    def local(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


def member(agent: str, role: str = "s5", voter: bool = True, **extra: Any) -> dict[str, Any]:
    return {"id": agent, "role": role, "voter": voter, "extra": extra}


def test_the_roll_admits_only_signed_members_the_roster_makes_voters() -> None:
    members = {
        "a": sign_record(KEYS["a"], "member", member("a")),
        "b": sign_record(KEYS["b"], "member", member("b", executes={"restart": "apply"})),
        "ghost": member("ghost"),  # unsigned, and not in the roster
        "c": sign_record(KEYS["s1-x"], "member", member("c")),  # in c's name by the insider
        "s1-x": sign_record(KEYS["s1-x"], "member", member("s1-x", role="s1")),  # voter: true
        "d": sign_record(KEYS["d"], "member", member("d", role="s1")),  # a role not granted
        "e": sign_record(KEYS["e"], "member", member("e")),
    }
    log = DecisionLog(LocalStore({VOTERS_KEY: members}), verifier=verifier(revoked=("e",)))
    roll = log.roll()
    assert roll.voters == ("a", "b")
    assert roll.executors["restart"] == Executor("b", "apply")
    assert log.refused == {
        "member_identity_malformed": 1,
        "member_identity_bad_signature": 1,
        "member_identity_role_not_allowed": 1,
        "member_identity_revoked": 1,
        "member_identity_voter_not_granted": 1,  # s1-x: a member, not a voter
    }
    log.roll()  # read again: the same records are not counted twice
    assert sum(log.refused.values()) == 5
    # identities off: every record counts, as before
    assert DecisionLog(LocalStore({VOTERS_KEY: members})).voters() == [
        "a", "b", "c", "d", "e", "ghost", "s1-x",
    ]  # fmt: skip


def test_the_log_hands_over_only_records_that_verify() -> None:
    genuine = sign_decided(KEYS["prop"], committed([vote(v) for v in "abc"]))
    forged = committed([vote("a", pid="p2"), vote("b", pid="p2"), vote("c", pid="p2")], pid="p2")
    forged = dataclasses.replace(  # c's ballot forged: a signature of b's
        forged,
        decision=dataclasses.replace(
            forged.decision,
            votes=(*forged.decision.votes[:2], vote("c", pid="p2", signed=False)),
        ),
    )
    claim = Execution(proposal_id="p1", executor="b", tool="t", state="running", started_ms=1)
    values = {
        decision_key("p1"): pack(genuine.to_wire()),
        decision_key("p2"): pack(forged.to_wire()),
        execution_key("p1"): pack(claim.to_wire()),  # unsigned, in b's name
    }
    log = DecisionLog(LocalStore(values), verifier=verifier())
    assert log.decided("p1") == genuine
    assert log.decided("p2") is None
    assert log.execution("p1") is None
    assert log.refused == {
        "decision_identity_unverified_ballots": 1,
        "execution_identity_bad_signature": 1,
    }
    values[execution_key("p1")] = pack(sign_execution(KEYS["b"], claim).to_wire())
    assert log.execution("p1") == sign_execution(KEYS["b"], claim)


def test_protocol_vectors_rebuild_from_the_consensus_records() -> None:
    """docs/PROTOCOL.md, "Consensus records": each vector's record is the wire form of a
    real Vote or Execution, signed as the voter or executor signs it."""
    build = {
        "ballot": (Vote.from_wire, sign_vote),
        "execution": (Execution.from_wire, sign_execution),
    }
    vectors = doc_vectors("consensus-identity-vectors")
    assert sorted(v["record_type"] for v in vectors) == ["ballot", "execution"]
    for v in vectors:
        decode, sign_it = build[v["record_type"]]
        me = Identity.from_seed(v["signer"], bytes.fromhex(v["seed_hex"]))
        wire = from_hex(v["record"])
        record = sign_it(me, decode(wire))
        body = unsigned(record.to_wire())
        assert body == wire  # the wire form holds exactly these fields
        assert signing_input(v["record_type"], v["signer"], body).hex() == v["signing_input_hex"]
        assert record.sig.hex() == v["signature_hex"]


# Ballots signed in a batch (pipelining) -------------------------------------------------


def batch_of(voter: str, n: int) -> list[Vote]:
    """`n` ballots of `voter` on proposals b0..b(n-1), signed together."""
    return sign_votes(KEYS[voter], [vote(voter, pid=f"b{i}", signed=False) for i in range(n)])


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 3 * MAX_BATCH), voter=st.sampled_from(FIVE))
def test_a_batch_is_one_signature_per_max_batch_and_each_ballot_verifies_alone(
    n: int, voter: str
) -> None:
    signed = batch_of(voter, n)
    groups = -(-n // MAX_BATCH)
    assert len({v.sig for v in signed}) == groups
    checker = verifier()
    for v in reversed(signed):  # any order, each alone, also after the wire
        assert check_vote(checker, wire_trip(v)) is IdentityVerdict.OK
        assert ballot_digest(v) in v.batch and len(v.batch) <= MAX_BATCH
    assert checker.cache_hits == n - groups  # one Ed25519 verify per batch


@settings(max_examples=50, deadline=None)
@given(
    v=votes,
    n=st.integers(1, 5),
    field=st.sampled_from(["proposal_id", "choice", "scores", "combined", "reason"]),
    data=st.data(),
)
def test_a_changed_ballot_or_batch_does_not_verify(
    v: Vote, n: int, field: str, data: st.DataObject
) -> None:
    others = [vote(v.voter, pid=f"{v.proposal_id}/{i}", signed=False) for i in range(n)]
    signed = sign_votes(KEYS[v.voter], [v, *others])[0]
    assert check_vote(verifier(), wire_trip(signed)) is IdentityVerdict.OK
    mutated = dataclasses.replace(signed, **{field: changed(getattr(signed, field))})
    assert check_vote(verifier(), mutated) is IdentityVerdict.BAD_SIGNATURE
    digests = list(signed.batch)
    i = data.draw(st.integers(0, len(digests) - 1))
    swapped = [*digests[:i], bytes(32), *digests[i + 1 :]]  # another ballot's digest lost
    for batch in (swapped, digests[::-1], digests[1:] + digests[:1]):
        if batch != digests:
            forged = dataclasses.replace(signed, batch=tuple(batch))
            assert check_vote(verifier(), forged) is IdentityVerdict.BAD_SIGNATURE


def test_a_batch_signature_does_not_move_to_another_ballot_or_voter() -> None:
    a0, a1 = batch_of("a", 2)
    lone = vote("a", pid="b9", signed=False)
    lifted = dataclasses.replace(lone, sig=a0.sig, batch=a0.batch)  # not in the batch
    as_b = dataclasses.replace(a1, voter="b")  # another voter's name
    as_lone = dataclasses.replace(a1, batch=())  # a batch signature is not a ballot's
    checker = verifier()
    for forged in (lifted, as_b, as_lone):
        assert check_vote(checker, forged) is IdentityVerdict.BAD_SIGNATURE
    assert checker.refused == {"bad_signature": 3}
    assert check_vote(verifier(revoked=("a",)), a0) is IdentityVerdict.REVOKED
    with pytest.raises(ConsensusError, match="cannot sign"):
        sign_votes(KEYS["b"], [lone, vote("a", pid="b8", signed=False)])


def test_a_decision_of_batch_signed_ballots_is_re_derivable_alone() -> None:
    ballots = [batch_of(v, 3)[1] for v in ("a", "b", "c")]  # each from its own batch
    on_p1 = {"proposal_id": "p1", "proposal_digest": proposal("p1").digest}
    genuine = committed([dataclasses.replace(b, **on_p1) for b in ballots])
    assert refusal(verifier(), genuine) == "identity_unverified_ballots"  # pid is signed
    ballots = [sign_votes(KEYS[v], [vote(v, signed=False), vote(v, pid="x", signed=False)])[0]
               for v in ("a", "b", "c")]  # fmt: skip
    decided = wire_trip(committed(ballots))
    assert all(v.batch for v in decided.decision.votes)
    assert refusal(verifier(), decided) is None
    assert refusal(verifier(), decided, FIVE) is None


def test_one_ballot_is_signed_alone_and_its_wire_form_is_unchanged() -> None:
    (signed,) = sign_votes(KEYS["a"], [vote("a", signed=False)])
    assert signed == vote("a") and "batch" not in signed.to_wire()
    assert sign_votes(None, [vote("a", signed=False)]) == [vote("a", signed=False)]


def test_protocol_ballot_batch_vector() -> None:
    """docs/PROTOCOL.md, "Ballots signed in a batch": the digests, signing input and
    signature of two ballots of one voter signed together."""
    v = doc_vectors("consensus-ballot-batch-vector")
    me = Identity.from_seed(v["signer"], bytes.fromhex(v["seed_hex"]))
    records = from_hex(v["ballots"])
    ballots = [Vote.from_wire(r) for r in records]
    signed = sign_votes(me, ballots)
    assert [d.hex() for d in signed[0].batch] == v["digests_hex"]
    for ballot, record in zip(ballots, records, strict=True):
        content = signing_input("ballot", v["signer"], record)
        assert hashlib.sha256(content).hexdigest() == ballot_digest(ballot).hex()
    items = [["ballot", bytes.fromhex(d)] for d in v["digests_hex"]]
    assert signing_input("batch", v["signer"], items).hex() == v["signing_input_hex"]
    assert all(s.sig.hex() == v["signature_hex"] for s in signed)


def test_protocol_proposal_digest_vector() -> None:
    """docs/PROTOCOL.md, "Consensus records": a proposal's digest, which its ballots carry;
    the batch vector's second ballot is on the same proposal as p-2 on w2."""
    v = doc_vectors("consensus-proposal-digest-vector")
    p = Proposal.from_wire(v["proposal"])
    assert p.to_wire() == v["proposal"]
    request = {k: v["proposal"][k] for k in ("id", "action", "payload", "resource", "quorum")}
    request["urgency"] = v["proposal"]["urgency"]  # proposer and times are not the request
    assert signing_input("proposal", "", request).hex() == v["signing_input_hex"]
    assert hashlib.sha256(bytes.fromhex(v["signing_input_hex"])).hexdigest() == v["digest_hex"]
    assert p.digest.hex() == v["digest_hex"]
    batch = from_hex(doc_vectors("consensus-ballot-batch-vector")["ballots"])
    assert batch[0]["proposal_digest"] == p.digest
    p2 = Proposal.from_wire(v["proposal"] | {"id": "p-2", "payload": {"targets": ["w2"]},
                                             "resource": "w2"})  # fmt: skip
    assert batch[1]["proposal_digest"] == p2.digest


def test_a_proposals_digest_is_its_request_and_a_decision_runs_from_its_ballots_deadline() -> None:
    """The digest changes with what is asked, not with who asks or when (a restarted or
    racing proposer counts the same ballots); a record whose proposal was given a later
    deadline keeps the execution window its ballots were cast on."""
    p = proposal("p1")
    same = [
        dataclasses.replace(p, proposer="other"),
        dataclasses.replace(p, created_ms=2_000, deadline_ms=9_000),
    ]
    assert all(q.digest == p.digest for q in same)
    others = [
        dataclasses.replace(p, id="p2"),
        dataclasses.replace(p, action="wipe"),
        dataclasses.replace(p, payload={"targets": ["*"]}),
        dataclasses.replace(p, resource="db"),
        dataclasses.replace(p, quorum="all"),
        dataclasses.replace(p, urgency="critical"),
    ]
    assert len({q.digest for q in [p, *others]}) == 1 + len(others)
    genuine = committed([vote(v) for v in "abc"])
    assert genuine.judged_deadline_ms == p.deadline_ms
    later = dataclasses.replace(p, deadline_ms=p.deadline_ms + 3_600_000)
    moved = dataclasses.replace(genuine, proposal=later)  # the same request: it builds
    assert moved.judged_deadline_ms == p.deadline_ms and refusal(verifier(), moved) is None


def test_a_voter_keeps_the_ballot_signed_with_others_and_sends_it_again() -> None:
    state = VoterState("a", identity=KEYS["a"])
    context = VoterContext(role="s5", members=5, live=5, now_ms=proposal("p1").created_ms)
    made = state.vote(proposal("p1"), context, sign=False)
    other = state.vote(proposal("p2"), context, sign=False)
    assert isinstance(made, Vote) and isinstance(other, Vote) and not made.sig
    signed = sign_votes(KEYS["a"], [made, other])
    state.keep_signed(dataclasses.replace(signed[0], reason="another"))  # not this ballot
    assert state.ballot("p1") == made
    state.keep_signed(signed[0])
    assert state.ballot("p1") == signed[0] == state.vote(proposal("p1"), context)
    assert check_vote(verifier(), signed[0]) is IdentityVerdict.OK
