"""docs/PROTOCOL.md's batch and compression vectors must match the implementation."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from amcp import Keyring, Opener
from amcp.envelope import FLAG_BATCH, FLAG_COMPRESSED, MAC_SIZE
from amcp.framebody import encode_item
from amcp.keyring import Key
from amcp.protocol import Sealer
from amcp.signing import MacKey

DOC = Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md"
TS = 1795238893.5  # the vectors' send time
EPOCH = 1795238893399388


def _vectors() -> list[dict[str, Any]]:
    block = re.search(r"```json batch-vectors\n(.*?)```", DOC.read_text(), re.S)
    assert block, "docs/PROTOCOL.md has no ```json batch-vectors block"
    return json.loads(block.group(1))


def _ring(vector: dict[str, Any]) -> Keyring:
    return Keyring([Key("0a1b2c3d", bytes.fromhex(vector["key_hex"]), 0.0, 0.0)])


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
    sealer = Sealer("alice", _ring(vector), clock=lambda: TS, epoch=EPOCH)
    sealer._id_prefix = bytes(range(8))
    items = [encode_item(m["kind"], m["headers"] or None, m["body"]) for m in vector["messages"]]
    assert sealer.seal_items(vector["subject"], items).hex() == vector["frame_hex"]
