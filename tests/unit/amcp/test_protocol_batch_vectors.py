"""docs/PROTOCOL.md's batch and compression vectors must match the implementation."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from amcp import Keyring, Opener
from amcp.envelope import FLAG_BATCH, FLAG_COMPRESSED, MAC_SIZE, body_start, decode_head
from amcp.framebody import encode_item
from amcp.keyring import Key
from amcp.protocol import Sealer
from amcp.signing import MacKey

DOC = Path(__file__).resolve().parents[3] / "docs" / "PROTOCOL.md"
TS = 1795238893.5  # the vectors' send time


def _vectors() -> list[dict[str, Any]]:
    block = re.search(r"```json batch-vectors\n(.*?)```", DOC.read_text(), re.S)
    assert block, "docs/PROTOCOL.md has no ```json batch-vectors block"
    return json.loads(block.group(1))


def _ring(vector: dict[str, Any]) -> Keyring:
    return Keyring([Key(vector["kid"], bytes.fromhex(vector["key_hex"]), 0.0, 0.0)])


def test_vectors_list_every_envelope_field():
    """What another implementation needs to rebuild each vector is in the vector."""
    for vector in _vectors():
        envelope = bytes.fromhex(vector["envelope_hex"])
        at, _ = body_start(envelope)
        env = decode_head(envelope[:at] + b"\xc0")
        assert (env.version, env.flags, env.sender, env.epoch, env.seq, env.ts_ms) == (
            1, vector["flags"], vector["sender"], vector["epoch"], vector["seq"], vector["ts_ms"]
        )  # fmt: skip
        assert (env.kid, env.kind, env.headers) == (
            vector["kid"],
            vector["kind"],
            vector["headers"],
        )
        assert env.msg_id == bytes.fromhex(vector["msg_id_prefix_hex"]) + env.seq.to_bytes(8, "big")


def test_vectors_cover_every_flag_combination():
    assert sorted(v["flags"] for v in _vectors()) == [
        FLAG_COMPRESSED,
        FLAG_BATCH,
        FLAG_BATCH | FLAG_COMPRESSED,
    ]


def test_vector_frames_verify_and_open_to_their_messages():
    for vector in _vectors():
        frame = bytes.fromhex(vector["frame_hex"])
        envelope, tag = frame[:-MAC_SIZE], frame[-MAC_SIZE:]
        assert envelope.hex() == vector["envelope_hex"] and tag.hex() == vector["mac_hex"]
        assert envelope[2] == vector["flags"]  # the flags byte, inside what the MAC covers
        key = MacKey(bytes.fromhex(vector["key_hex"]))
        assert key.sign(vector["subject"], envelope) == tag
        opener = Opener(_ring(vector), clock=lambda: TS)
        got = opener.open_all(vector["subject"], frame)
        assert [
            {"seq": m.seq, "kind": m.kind, "headers": m.headers, "body": m.body} for m in got
        ] == vector["messages"]
        assert {m.sender for m in got} == {"alice"}


def test_the_plain_batch_vector_is_what_the_sealer_makes():
    """Byte for byte (compressed vectors depend on the zlib build, so only the plain one)."""
    [vector] = [v for v in _vectors() if v["flags"] == FLAG_BATCH]
    clock = lambda: vector["ts_ms"] / 1000  # noqa: E731
    sealer = Sealer(vector["sender"], _ring(vector), clock=clock, epoch=vector["epoch"])
    sealer._id_prefix = bytes.fromhex(vector["msg_id_prefix_hex"])
    sealer.seq = vector["seq"] - 1
    items = [encode_item(m["kind"], m["headers"] or None, m["body"]) for m in vector["messages"]]
    assert sealer.seal_items(vector["subject"], items).hex() == vector["frame_hex"]
