"""Consensus records: validation, wire round trips, and strict decoding of garbage."""

from __future__ import annotations

import contextlib
import math
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from amcp.attest import signing_input
from consensus.errors import ConsensusDecodeError, ConsensusError
from consensus.model import Choice, Decision, Outcome, Proposal, Scores, Summary, Urgency, Vote
from consensus.tally import decide
from tests.support.factories import proposal

ids = st.text(min_size=1, max_size=12)
units = st.floats(0.0, 1.0)
scores_st = st.builds(Scores, units, units, units, units, units)
plain = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.binary(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def proposals(draw: st.DrawFn) -> Proposal:
    created = draw(st.integers(0, 2**40))
    return Proposal(
        id=draw(ids),
        action=draw(st.sampled_from(["restart", "deploy", "shutdown", "x"])),
        proposer=draw(ids),
        created_ms=created,
        deadline_ms=created + draw(st.integers(1, 10**6)),
        payload=draw(st.dictionaries(st.text(max_size=6), plain, max_size=4)),
        resource=draw(st.none() | ids),
        quorum=draw(st.sampled_from(["majority", "all", "any", "2", "2/3", "weighted:0.6"])),
        urgency=draw(st.sampled_from(Urgency)),
    )


def votes_on(proposal_id: str, digest: bytes = bytes(32)) -> st.SearchStrategy[Vote]:
    return st.builds(
        Vote,
        proposal_id=st.just(proposal_id),
        proposal_digest=st.just(digest),
        deadline_ms=st.integers(0, 2**40),
        voter=st.sampled_from(["a", "b", "c", "d", "e", "z"]),
        choice=st.sampled_from(Choice),
        scores=scores_st,
        combined=units,
        reason=st.text(max_size=20),
    )


@st.composite
def decisions(draw: st.DrawFn) -> Decision:
    proposal = draw(proposals())
    members = draw(st.frozensets(st.sampled_from(["a", "b", "c", "d", "e"])))
    votes = draw(st.lists(votes_on(proposal.id, proposal.digest), max_size=8))
    decision = decide(proposal, members, votes, now_ms=proposal.deadline_ms)
    assert decision is not None
    return decision


def via_msgpack(wire: dict[str, Any]) -> Any:
    return msgpack.unpackb(msgpack.packb(wire, use_bin_type=True), raw=False)


def vote(**changes: Any) -> Vote:
    fields: dict[str, Any] = {
        "proposal_id": "p1",
        "proposal_digest": bytes(32),
        "deadline_ms": 6_000,
        "voter": "a",
        "choice": Choice.YES,
        "scores": Scores(0.5, 0.5, 0.5, 0.5, 0.5),
        "combined": 0.5,
        "reason": "ok",
    }
    return Vote(**(fields | changes))


# Round trips ---------------------------------------------------------------


@given(proposals())
def test_proposal_round_trip(p: Proposal) -> None:
    assert Proposal.from_wire(via_msgpack(p.to_wire())) == p


@given(votes_on("p"))
def test_vote_round_trip(v: Vote) -> None:
    assert Vote.from_wire(via_msgpack(v.to_wire())) == v


@given(decisions())
def test_decision_round_trip(d: Decision) -> None:
    assert Decision.from_wire(via_msgpack(d.to_wire())) == d


# Validation on construction ------------------------------------------------


def test_proposal_defaults_and_frozen_payload() -> None:
    p = proposal(payload={"targets": ["n1", "n2"], "opts": {"force": True}})
    assert p.quorum == "majority" and p.urgency is Urgency.NORMAL and p.resource is None
    assert p.payload["targets"] == ("n1", "n2")
    with pytest.raises(TypeError):
        p.payload["opts"]["force"] = False  # type: ignore[index]
    assert p.to_wire()["payload"] == {"targets": ["n1", "n2"], "opts": {"force": True}}
    assert isinstance(hash(p), int)


def test_enums_accept_their_string_values() -> None:
    assert proposal(urgency="critical").urgency is Urgency.CRITICAL
    assert vote(choice="abstain").choice is Choice.ABSTAIN


@pytest.mark.parametrize(
    "changes",
    [
        {"id": ""},
        {"id": 5},
        {"id": "x" * 257},
        {"deadline_ms": 1_000},
        {"created_ms": -1},
        {"created_ms": True},
        {"created_ms": 1.5},
        {"quorum": "most"},
        {"urgency": "asap"},
        {"resource": ""},
        {"payload": [1]},
        {"payload": {1: "int key"}},
        {"payload": {"f": math.nan}},
        {"payload": {"s": {1, 2}}},
        {"payload": {"big": 2**64}},
        {"payload": {"deep": [[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}},
    ],
)
def test_bad_proposals_raise_consensus_error(changes: dict[str, Any]) -> None:
    with pytest.raises(ConsensusError):
        proposal(**changes)


@pytest.mark.parametrize(
    "changes",
    [
        {"choice": "maybe"},
        {"combined": 1.01},
        {"combined": -0.1},
        {"combined": math.inf},
        {"combined": "0.5"},
        {"scores": {"urgency": 1}},
        {"reason": "r" * 1025},
        {"voter": None},
    ],
)
def test_bad_votes_raise_consensus_error(changes: dict[str, Any]) -> None:
    with pytest.raises(ConsensusError):
        vote(**changes)


@pytest.mark.parametrize("bad", [-0.01, 1.01, math.nan, True, "1", None])
def test_scores_are_unit_interval(bad: object) -> None:
    with pytest.raises(ConsensusError, match="risk"):
        Scores(0.5, 0.5, bad, 0.5, 0.5)  # type: ignore[arg-type]


def test_scores_accept_ints_and_normalize_negative_zero() -> None:
    s = Scores(0, 1, -0.0, 0.5, 1)
    assert s.to_wire() == {
        "urgency": 0.0, "importance": 1.0, "risk": 0.0, "confidence": 0.5, "novelty": 1.0
    }  # fmt: skip
    assert math.copysign(1.0, s.risk) == 1.0


def _summary(yes: int = 0, no: int = 0, abstain: int = 0) -> Summary:
    return Summary(
        yes=yes, no=no, abstain=abstain, yes_weight=0, no_weight=0, abstain_weight=0, needed=1
    )


def test_decision_normalizes_order_and_checks_consistency() -> None:
    d = Decision(
        proposal_id="p1",
        outcome=Outcome.REJECTED,
        quorum="majority",
        members=frozenset({"b", "a", "c"}),  # type: ignore[arg-type]
        votes=(vote(voter="b", choice=Choice.NO), vote(voter="a", choice=Choice.NO)),
        summary=_summary(no=2),
    )
    assert d.members == ("a", "b", "c")
    assert [v.voter for v in d.votes] == ["a", "b"]


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"outcome": Outcome.PENDING}, "cannot be pending"),
        ({"members": ("a", "a")}, "unique"),
        ({"votes": (vote(), vote())}, "one vote per voter"),
        ({"votes": (vote(voter="x"),)}, "only votes of members"),
        ({"votes": (vote(proposal_id="p2"),)}, "its own proposal"),
        ({"summary": _summary(no=1)}, "do not match"),
        ({"votes": [vote().to_wire()]}, "Vote records"),
    ],
)
def test_inconsistent_decisions_are_refused(changes: dict[str, Any], fragment: str) -> None:
    fields: dict[str, Any] = {
        "proposal_id": "p1",
        "outcome": Outcome.COMMITTED,
        "quorum": "any",
        "members": ("a", "b"),
        "votes": (vote(),),
        "summary": _summary(yes=1),
    }
    with pytest.raises(ConsensusError, match=fragment):
        Decision(**(fields | changes))


# Strict decoding ----------------------------------------------------------

garbage = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=10)
    | st.binary(max_size=10)
    | st.builds(object)
    | st.sampled_from(["yes", "committed", "majority", "critical", 0.5, 2**200]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.frozensets(st.integers(), max_size=3)
        | st.dictionaries(st.text(max_size=12) | st.integers(), inner, max_size=6)
    ),
    max_leaves=20,
)
RECORDS = [Proposal, Vote, Decision, Scores, Summary]


@given(st.sampled_from(RECORDS), garbage)
def test_from_wire_raises_only_decode_error_on_garbage(cls: Any, data: object) -> None:
    with contextlib.suppress(ConsensusDecodeError):
        cls.from_wire(data)


@st.composite
def mutated_wire(draw: st.DrawFn) -> tuple[Any, Any]:
    """A valid wire dict with one field, at any depth, replaced, dropped or added."""
    kind = draw(st.sampled_from(["proposal", "vote", "decision"]))
    if kind == "proposal":
        cls, wire = Proposal, draw(proposals()).to_wire()
    elif kind == "vote":
        cls, wire = Vote, draw(votes_on("p")).to_wire()
    else:
        cls, wire = Decision, draw(decisions()).to_wire()
    node = wire
    while True:
        children = [k for k, v in node.items() if isinstance(v, dict) and v]
        if not children or draw(st.booleans()):
            break
        node = node[draw(st.sampled_from(children))]
    key = draw(st.sampled_from(sorted(node)))
    action = draw(st.sampled_from(["replace", "drop", "add"]))
    if action == "replace":
        node[key] = draw(garbage)
    elif action == "drop":
        del node[key]
    else:
        node[draw(st.text(max_size=5))] = draw(garbage)
    return cls, wire


@given(mutated_wire())
def test_from_wire_raises_only_decode_error_on_mutated_records(case: tuple[Any, Any]) -> None:
    cls, wire = case
    with contextlib.suppress(ConsensusDecodeError):
        cls.from_wire(wire)


def test_decode_errors_name_the_record_and_field() -> None:
    wire = vote().to_wire()
    wire["scores"]["risk"] = 2
    with pytest.raises(ConsensusDecodeError, match=r"bad scores: risk must be in \[0, 1\]"):
        Vote.from_wire(wire)
    wire = proposal().to_wire() | {"extra": 1}
    with pytest.raises(ConsensusDecodeError, match="wrong fields: unexpected 'extra'"):
        Proposal.from_wire(wire)
    with pytest.raises(ConsensusDecodeError, match="expected a map"):
        Decision.from_wire([1, 2])
    with pytest.raises(ConsensusDecodeError, match="created_ms must be an integer"):
        Proposal.from_wire(proposal().to_wire() | {"created_ms": 10**5000})
    with pytest.raises(ConsensusDecodeError, match="missing 'voter'"):
        Vote.from_wire({k: v for k, v in vote().to_wire().items() if k != "voter"})


# Anything a record's validation lets in, and some it must not: NaN, infinities, sets,
# integers past msgpack's range, non-str keys.
loose = st.recursive(
    plain | st.floats() | st.integers(-(2**70), 2**70) | st.frozensets(st.integers(), max_size=2),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=4) | st.integers(), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(base=proposals(), payload=st.dictionaries(st.text(max_size=6), loose, max_size=3))
def test_a_validated_records_wire_form_is_plain(base: Proposal, payload: dict[str, Any]) -> None:
    """The identity signatures of consensus records skip attest's canonical-form check
    (plain=True) because validation already guarantees it: whatever a record accepts
    has exactly one canonical form, so the skip changes no signed byte."""
    try:
        record = Proposal(**{**base.__dict__, "payload": payload})
    except ConsensusError:
        return  # refused on construction: it never reaches a signature
    wire = record.to_wire()
    checked = signing_input("decision", "p", wire)  # raises if it is not plain data
    assert signing_input("decision", "p", wire, plain=True) == checked


@given(decision=decisions())
def test_a_validated_decisions_wire_form_is_plain(decision: Decision) -> None:
    wire = decision.to_wire()
    assert signing_input("decision", "p", wire, plain=True) == signing_input("decision", "p", wire)


def test_a_batch_signed_votes_digests_round_trip_and_bad_ones_are_refused() -> None:
    lone = Vote(
        proposal_id="p",
        proposal_digest=bytes(32),
        deadline_ms=1,
        voter="v",
        choice=Choice.YES,
        scores=Scores(0, 0, 0, 0, 0),
        combined=0,
    )
    digests = [bytes([i]) * 32 for i in range(3)]
    wire = {**lone.to_wire(), "sig": bytes(64), "batch": digests}
    batched = Vote.from_wire(msgpack.unpackb(msgpack.packb(wire), raw=False))
    assert batched.batch == tuple(digests) and batched.to_wire() == wire
    assert "batch" not in lone.to_wire()  # a ballot signed alone keeps its wire form
    bad = {
        "must be a list": 7,
        "32-byte digests": [b"short"],
        "at most 16": [bytes([i]) * 32 for i in range(17)],
        "distinct": [digests[0], digests[0]],
    }
    for why, batch in bad.items():
        with pytest.raises(ConsensusDecodeError, match=f"bad vote: .*{why}"):
            Vote.from_wire({**wire, "batch": batch})
