"""Identity signatures: round trip for every record type, domain separation by type and by
signer, roster refusals with a reason (never an exception), the verify cache, batches."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amcp.attest import (
    RECORD_TYPES,
    IdentityVerdict,
    IdentityVerifier,
    sign,
    sign_batch,
    sign_record,
    signing_input,
    unsigned,
)
from amcp.identity import Identity
from amcp.roster import Roster, RosterEntry

# Keys are made once: hypothesis varies the records, types and signers, not the keys.
X = Identity.from_seed("s5-x", bytes(range(32)))
Y = Identity.from_seed("s5-y", bytes(range(1, 33)))
IDS = {i.agent_id: i for i in (X, Y)}

records = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(1 << 63), (1 << 64) - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
types = st.sampled_from(RECORD_TYPES)


def _verifier(**revoked: bool) -> IdentityVerifier:
    return IdentityVerifier(
        Roster(
            RosterEntry(i.agent_id, i.public_key, frozenset({"s5"}), revoked.get(i.agent_id, False))
            for i in (X, Y)
        )
    )


@settings(max_examples=60, deadline=None)
@given(record_type=types, record=records, who=st.sampled_from(sorted(IDS)))
def test_round_trip_for_every_record_type(record_type: str, record: Any, who: str) -> None:
    verifier = _verifier()
    sig = sign(IDS[who], record_type, record)  # type: ignore[arg-type]
    assert verifier.verify(record_type, who, record, sig, role="s5") is IdentityVerdict.OK


@settings(max_examples=60, deadline=None)
@given(pair=st.permutations(RECORD_TYPES).map(lambda p: p[:2]), record=records)
def test_a_signature_for_one_type_never_verifies_as_another(pair: list[str], record: Any) -> None:
    a, b = pair
    verifier = _verifier()
    sig = sign(X, a, record)  # type: ignore[arg-type]
    assert verifier.verify(b, X.agent_id, record, sig) is IdentityVerdict.BAD_SIGNATURE
    assert verifier.refused == {"bad_signature": 1}


@settings(max_examples=60, deadline=None)
@given(record_type=types, record=records)
def test_a_signature_by_x_never_verifies_as_y(record_type: str, record: Any) -> None:
    verifier = _verifier()
    sig = sign(X, record_type, record)  # type: ignore[arg-type]
    assert verifier.verify(record_type, Y.agent_id, record, sig) is IdentityVerdict.BAD_SIGNATURE


@settings(max_examples=40, deadline=None)
@given(record_type=types, record=records, other=records)
def test_a_changed_record_does_not_verify(record_type: str, record: Any, other: Any) -> None:
    if signing_input(record_type, "s5-x", record) == signing_input(record_type, "s5-x", other):
        return  # the same canonical value (1 and 1.0 differ; {} orders do not)
    sig = sign(X, record_type, record)  # type: ignore[arg-type]
    assert _verifier().verify(record_type, X.agent_id, other, sig) is IdentityVerdict.BAD_SIGNATURE


def test_map_order_does_not_change_the_bytes() -> None:
    a = signing_input("ballot", "s", {"b": 1, "a": [1, {"z": 0, "y": 1}]})
    b = signing_input("ballot", "s", {"a": [1, {"y": 1, "z": 0}], "b": 1})
    assert a == b


def test_roster_refusals_each_have_a_reason() -> None:
    record = {"proposal": "p-1", "vote": "yes"}
    sig = sign(X, "ballot", record)
    verifier = _verifier(**{"s5-x": True})
    assert verifier.verify("ballot", "s5-x", record, sig) is IdentityVerdict.REVOKED
    assert verifier.verify("ballot", "ghost", record, sig) is IdentityVerdict.UNKNOWN_SIGNER
    ysig = sign(Y, "ballot", record)
    assert (
        verifier.verify("ballot", "s5-y", record, ysig, role="s1")
        is IdentityVerdict.ROLE_NOT_ALLOWED
    )
    assert verifier.verify("vote", "s5-y", record, ysig) is IdentityVerdict.BAD_RECORD_TYPE
    assert verifier.verify("batch", "s5-y", record, ysig) is IdentityVerdict.BAD_RECORD_TYPE
    assert verifier.verify("ballot", "s5-y", {1, 2}, ysig) is IdentityVerdict.MALFORMED
    assert verifier.verify("ballot", "s5-y", record, "sig") is IdentityVerdict.MALFORMED  # type: ignore[arg-type]
    assert (
        verifier.verify("ballot", "s5-y", record, ysig + b"\x00") is IdentityVerdict.BAD_SIGNATURE
    )
    assert verifier.verify("ballot", "s5-y", float("nan"), ysig) is IdentityVerdict.MALFORMED
    assert verifier.verify("ballot", "s5-y", record, ysig, role="s5") is IdentityVerdict.OK
    assert verifier.refused == {
        "revoked": 1,
        "unknown_signer": 1,
        "role_not_allowed": 1,
        "bad_record_type": 2,
        "malformed": 3,
        "bad_signature": 1,
    }


def test_revocation_counts_at_once_even_for_a_cached_record() -> None:
    roster = Roster([RosterEntry(X.agent_id, X.public_key, frozenset({"s5"}))])
    verifier = IdentityVerifier(roster)
    sig = sign(X, "decision", {"id": 1})
    assert verifier.verify("decision", X.agent_id, {"id": 1}, sig) is IdentityVerdict.OK
    roster.revoke(X.agent_id)
    assert verifier.verify("decision", X.agent_id, {"id": 1}, sig) is IdentityVerdict.REVOKED


def test_the_cache_verifies_once_per_record(monkeypatch: pytest.MonkeyPatch) -> None:
    import amcp.attest

    calls: list[bytes] = []
    real = amcp.attest.verify_signature

    def counting(key: bytes, sig: bytes, data: bytes) -> bool:
        calls.append(data)
        return real(key, sig, data)

    monkeypatch.setattr(amcp.attest, "verify_signature", counting)
    verifier = IdentityVerifier(_verifier().roster, cache_size=2)
    sigs = [sign(X, "ballot", n) for n in range(3)]
    for _ in range(3):
        assert verifier.verify("ballot", X.agent_id, 0, sigs[0]) is IdentityVerdict.OK
    assert len(calls) == 1 and verifier.cache_hits == 2
    bad = bytes(64)
    assert verifier.verify("ballot", X.agent_id, 0, bad) is IdentityVerdict.BAD_SIGNATURE
    assert verifier.verify("ballot", X.agent_id, 0, bad) is IdentityVerdict.BAD_SIGNATURE
    assert len(calls) == 2  # a bad one is remembered too: no repeated work for junk
    # bounded: a third record evicts the oldest (sigs[0]), which is verified again
    verifier.verify("ballot", X.agent_id, 1, sigs[1])
    verifier.verify("ballot", X.agent_id, 0, sigs[0])
    assert len(calls) == 4


def test_a_new_key_for_an_id_does_not_inherit_a_cached_result() -> None:
    roster = Roster([RosterEntry("a", X.public_key)])
    verifier = IdentityVerifier(roster)
    sig = sign(Identity.from_seed("a", bytes(range(32))), "audit", "entry")
    assert verifier.verify("audit", "a", "entry", sig) is IdentityVerdict.OK
    roster._by_id["a"] = RosterEntry("a", Y.public_key)  # the operator replaced the file
    assert verifier.verify("audit", "a", "entry", sig) is IdentityVerdict.BAD_SIGNATURE


def test_batch_signature_covers_all_records_in_order() -> None:
    items = [("ballot", {"p": 1}), ("ballot", {"p": 2}), ("execution", {"p": 1})]
    sig = sign_batch(X, items)  # type: ignore[arg-type]
    verifier = _verifier()
    assert verifier.verify_batch(X.agent_id, items, sig, role="s5") is IdentityVerdict.OK
    assert verifier.verify_batch(X.agent_id, items[::-1], sig) is IdentityVerdict.BAD_SIGNATURE
    assert verifier.verify_batch(X.agent_id, items[:2], sig) is IdentityVerdict.BAD_SIGNATURE
    assert verifier.verify_batch(Y.agent_id, items, sig) is IdentityVerdict.BAD_SIGNATURE
    # a batch signature is not any single record's, nor the reverse
    assert verifier.verify("ballot", X.agent_id, {"p": 1}, sig) is IdentityVerdict.BAD_SIGNATURE
    one = sign(X, "ballot", {"p": 1})
    assert (
        verifier.verify_batch(X.agent_id, [("ballot", {"p": 1})], one)
        is IdentityVerdict.BAD_SIGNATURE
    )
    assert verifier.verify_batch(X.agent_id, [], sig) is IdentityVerdict.BAD_RECORD_TYPE
    assert (
        verifier.verify_batch(X.agent_id, [("batch", [])], sig) is IdentityVerdict.BAD_RECORD_TYPE
    )


def test_signing_refuses_what_has_no_canonical_form() -> None:
    for bad in ({1}, {"a": object()}, {1: "int key"}, 1 << 64, float("inf")):
        with pytest.raises(ValueError):
            sign(X, "member", bad)
    with pytest.raises(ValueError, match="unknown record type"):
        sign(X, "vote", 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown record type"):
        sign(X, "batch", [["ballot", 1]])  # type: ignore[arg-type]


def test_the_signer_id_is_signed_even_when_two_ids_share_a_key() -> None:
    # an operator who gives one key two ids (s5 and s3 hats) must still not let a record
    # signed as one count as the other's
    roster = Roster([RosterEntry("hat-a", X.public_key), RosterEntry("hat-b", X.public_key)])
    as_a = Identity.from_seed("hat-a", bytes(range(32)))
    sig = sign(as_a, "ballot", {"p": 1})
    verifier = IdentityVerifier(roster)
    assert verifier.verify("ballot", "hat-a", {"p": 1}, sig) is IdentityVerdict.OK
    assert verifier.verify("ballot", "hat-b", {"p": 1}, sig) is IdentityVerdict.BAD_SIGNATURE


ROSTER_XY = Roster([RosterEntry(i.agent_id, i.public_key, frozenset({"s5"})) for i in (X, Y)])


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(st.text(max_size=8), records, max_size=4), types)
def test_map_records_carry_their_signature_and_verify_without_it(
    record: dict[str, Any], record_type: str
) -> None:
    signed = sign_record(X, record_type, record)  # type: ignore[arg-type]
    assert unsigned(signed) == unsigned(record)
    verifier = IdentityVerifier(ROSTER_XY)
    assert verifier.verify_record(record_type, "s5-x", signed) is IdentityVerdict.OK
    assert verifier.verify_record(record_type, "s5-y", signed) is IdentityVerdict.BAD_SIGNATURE


def test_a_map_record_changed_after_signing_or_without_a_signature_is_refused() -> None:
    verifier = IdentityVerifier(ROSTER_XY)
    signed = sign_record(X, "member", {"id": "s5-x", "voter": False})
    forged = {**signed, "voter": True}
    assert verifier.verify_record("member", "s5-x", forged) is IdentityVerdict.BAD_SIGNATURE
    assert verifier.verify_record("member", "s5-x", unsigned(signed)) is IdentityVerdict.MALFORMED
    assert verifier.verify_record("member", "s5-x", ["not", "a", "map"]) is IdentityVerdict.MALFORMED
    assert verifier.refused == {"bad_signature": 1, "malformed": 2}
