"""docs/PROTOCOL.md's test vectors must match the implementation, byte for byte."""

from __future__ import annotations

from typing import Any

from amcp import Keyring, Opener
from amcp.envelope import FrameLimits, decode_body, pack_envelope, unpack_envelope
from amcp.keyring import Key
from amcp.signing import MacKey, mac_prefix
from tests.support.vectors import doc_vectors, from_hex


def _vectors() -> list[dict[str, Any]]:
    return doc_vectors("vectors")


def test_vectors_encode_and_sign_exactly() -> None:
    vectors = _vectors()
    assert len(vectors) >= 2
    for vector in vectors:
        key, subject, fields = (
            bytes.fromhex(vector["key_hex"]),
            vector["subject"],
            from_hex(vector["fields"]),
        )
        envelope = pack_envelope(fields)
        assert mac_prefix(subject).hex() == vector["mac_input_prefix_hex"]
        assert envelope.hex() == vector["envelope_hex"]
        tag = MacKey(key).sign(subject, envelope)
        assert tag.hex() == vector["mac_hex"]
        assert (envelope + tag).hex() == vector["frame_hex"]


def test_vector_frames_decode_and_verify() -> None:
    for vector in _vectors():
        frame = bytes.fromhex(vector["frame_hex"])
        fields = from_hex(vector["fields"])
        env, signed, _, at = unpack_envelope(frame, FrameLimits())
        env.body = decode_body(signed, at, env.flags, FrameLimits())
        assert [
            env.version,
            env.flags,
            env.msg_id,
            env.sender,
            env.epoch,
            env.seq,
            env.ts_ms,
            env.kid,
            env.kind,
            env.headers,
            env.body,
        ] == fields
        key = Key(env.kid, bytes.fromhex(vector["key_hex"]), 0.0, 0.0)
        opener = Opener(Keyring([key]), clock=lambda ts=env.ts_ms: ts / 1000)
        assert opener.open(vector["subject"], frame).body == fields[10]
