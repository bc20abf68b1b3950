"""Member records under identity checks (pure, no store): a record counts only when its own
agent signed it for a role the roster grants; a changed field, another signer, an unsigned
record, a revoked key or an ungranted role is left out and counted once, by reason; a
voter claim without the roster's voter role counts as a member that does not vote."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agents.runtime.membership import MemberCheck, MemberRecord
from amcp.attest import IdentityVerifier, sign_record
from amcp.identity import Identity
from amcp.roster import Roster, RosterEntry

A = Identity.from_seed("s5-a", bytes(range(32)))
B = Identity.from_seed("s1-b", bytes(range(1, 33)))


def roster(**roles: str) -> Roster:
    keys = {i.agent_id: i.public_key for i in (A, B)}
    return Roster(RosterEntry(k, keys[k], frozenset(r.split(","))) for k, r in roles.items())


def doc(identity: Identity, **fields: Any) -> dict[str, Any]:
    """`identity`'s own signed record (fields override the record's before signing)."""
    record = MemberRecord(id=identity.agent_id, role="s5", version="1", state="running")
    return sign_record(identity, "member", replace(record, **fields).to_wire())


def test_without_a_verifier_every_well_formed_record_counts() -> None:
    check = MemberCheck(None)
    unsigned = MemberRecord(id="x", role="s1", version="1", state="running", voter=True)
    records = check.records({"x": unsigned.to_wire(), "y": {"id": "other", "role": "s1"}})
    assert list(records) == ["x"] and records["x"].voter
    assert not check.refused


def test_a_record_signed_by_its_agent_counts_and_votes_with_the_voter_role() -> None:
    check = MemberCheck(IdentityVerifier(roster(**{"s5-a": "s5"})))
    records = check.records({"s5-a": doc(A, voter=True)})
    assert records["s5-a"].voter and records["s5-a"].state == "running"
    assert not check.refused


changes = st.sampled_from(
    [
        ("state", "draining"),
        ("voter", False),
        ("version", "2"),
        ("tools", ["rm"]),
        ("extra", {"executes": {"restart": "rm"}}),
        ("heartbeat", 9.0),
    ]
)


@settings(max_examples=30, deadline=None)
@given(change=changes)
def test_a_changed_field_fails_the_signature(change: tuple[str, Any]) -> None:
    check = MemberCheck(IdentityVerifier(roster(**{"s5-a": "s5"})))
    forged = {**doc(A, voter=True), change[0]: change[1]}
    assert check.records({"s5-a": forged}) == {}
    assert check.refused == {"identity_bad_signature": 1}


def test_records_in_another_agents_name_or_unsigned_or_unknown_are_refused_by_reason() -> None:
    check = MemberCheck(IdentityVerifier(roster(**{"s5-a": "s5", "s1-b": "s1"})))
    b_as_a = sign_record(B, "member", {**doc(A), "id": "s5-a"})  # B signs a record naming A
    ghost = MemberRecord(id="ghost", role="s5", version="1", state="running", voter=True)
    value = {
        "s5-a": b_as_a,
        "ghost": sign_record(B, "member", ghost.to_wire()),  # B's signature, ghost's id
        "s1-b": MemberRecord(id="s1-b", role="s1", version="1", state="x").to_wire(),
    }
    assert check.records(value) == {}
    assert check.refused == {
        "identity_bad_signature": 1,
        "identity_unknown_signer": 1,
        "identity_malformed": 1,  # no signature at all
    }


def test_a_role_or_the_vote_the_roster_does_not_grant() -> None:
    check = MemberCheck(IdentityVerifier(roster(**{"s5-a": "s1", "s1-b": "s1"})))
    records = check.records({"s5-a": doc(A), "s1-b": doc(B, role="s1", voter=True)})
    assert list(records) == ["s1-b"]  # s5-a claims s5, granted s1 only
    assert records["s1-b"].voter is False  # signed itself a voter without VOTER_ROLE
    assert check.refused == {"identity_role_not_allowed": 1, "identity_voter_not_granted": 1}


def test_a_refusal_is_counted_once_and_a_revocation_is_seen_at_once() -> None:
    keys = roster(**{"s5-a": "s5", "s1-b": "s1"})
    verifier = IdentityVerifier(keys)
    check = MemberCheck(verifier)
    value = {"s5-a": doc(A, voter=True), "s1-b": {**doc(B, role="s1"), "state": "x"}}
    for _ in range(5):  # every heartbeat reads the list: the verdicts are kept
        assert list(check.records(value)) == ["s5-a"]
    assert check.refused == {"identity_bad_signature": 1}
    assert sum(verifier.refused.values()) == 1

    keys.revoke("s5-a")  # a new entry object, as a reload gives
    assert check.records(value) == {}
    assert check.refused == {"identity_bad_signature": 1, "identity_revoked": 1}
