"""docs/PROTOCOL.md's identity signature vectors, rebuilt from their fields: the key from
the seed, the signing input from type, signer and record, then the signature."""

from __future__ import annotations

from typing import Any

from amcp.attest import BATCH, IdentityVerdict, IdentityVerifier, sign, sign_batch, signing_input
from amcp.identity import Identity
from amcp.roster import Roster, RosterEntry
from tests.support.vectors import doc_vectors, from_hex


def _vectors() -> list[dict[str, Any]]:
    return doc_vectors("identity-vectors")


def test_vectors_rebuild_byte_for_byte() -> None:
    vectors = _vectors()
    assert {v["record_type"] for v in vectors} >= {"ballot", "decision", "member", BATCH}
    for v in vectors:
        me = Identity.from_seed(v["signer"], bytes.fromhex(v["seed_hex"]))
        assert me.public_key.hex() == v["public_key_hex"]
        record = from_hex(v["record"])
        data = signing_input(v["record_type"], v["signer"], record)
        assert data.hex() == v["signing_input_hex"], v["record_type"]
        if v["record_type"] == BATCH:
            sig = sign_batch(me, [(t, r) for t, r in record])
        else:
            sig = sign(me, v["record_type"], record)
        assert sig.hex() == v["signature_hex"], v["record_type"]
        roster = Roster([RosterEntry(me.agent_id, me.public_key)])
        verifier = IdentityVerifier(roster)
        signature = bytes.fromhex(v["signature_hex"])
        if v["record_type"] == BATCH:
            verdict = verifier.verify_batch(v["signer"], [(t, r) for t, r in record], signature)
        else:
            verdict = verifier.verify(v["record_type"], v["signer"], record, signature)
        assert verdict is IdentityVerdict.OK


def test_the_signing_input_is_the_documented_array() -> None:
    # the spec's layout by hand for the first vector: fixarray(4), then the four elements
    v = _vectors()[0]
    data = bytes.fromhex(v["signing_input_hex"])
    assert data[0] == 0x94
    assert data[1:10] == b"\xa8amcp-id1"
    t = v["record_type"].encode()
    assert data[10 : 11 + len(t)] == bytes([0xA0 | len(t)]) + t
