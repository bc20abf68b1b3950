"""docs/PROTOCOL.md's sealed-body vectors, rebuilt from the spec's fields with the
primitives themselves (HKDF, AES-GCM, HMAC), not amcp's helpers; then amcp must build the
same frame and open it to the same body."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from amcp import Keyring, Opener, Sealer
from amcp.keyring import Key
from amcp.replay import ReplayGuard
from amcp.sealing import SealPolicy

DOC = Path(__file__).resolve().parents[3] / "docs" / "PROTOCOL.md"


def _vectors() -> list[dict[str, Any]]:
    block = re.search(r"```json sealed-vectors\n(.*?)```", DOC.read_text(), re.S)
    assert block, "docs/PROTOCOL.md has no ```json sealed-vectors block"
    return json.loads(block.group(1))


VECTORS = _vectors()


def _u(n: int, size: int) -> bytes:
    return n.to_bytes(size, "big")


@pytest.mark.parametrize("v", VECTORS, ids=[v["subject"] for v in VECTORS])
def test_the_spec_rebuilds_each_vector(v: dict[str, Any]) -> None:
    key, sender, subject = bytes.fromhex(v["key_hex"]), v["sender"].encode(), v["subject"]
    info = b"amcp1 seal" + _u(len(sender), 2) + sender + _u(v["epoch"], 8)
    seal_key = HKDF(algorithm=SHA256(), length=32, salt=None, info=info).derive(key)
    nonce = _u(v["seq"], 12)
    fields = [1, 4, bytes.fromhex(v["msg_id_hex"]), v["sender"], v["epoch"], v["seq"]]
    fields += [v["ts_ms"], v["kid"], v["kind"], v["headers"], None]
    head = msgspec.msgpack.encode(fields)[:-1]  # without the nil standing for the body
    prefix = b"amcp1" + _u(len(subject.encode()), 2) + subject.encode()  # the MAC's too
    aad = prefix + head
    plaintext = msgspec.msgpack.encode(v["body"])
    sealed = AESGCM(seal_key).encrypt(nonce, plaintext, aad)
    envelope = head + msgspec.msgpack.encode(sealed)
    tag = hmac.digest(key, aad + envelope[len(head) :], hashlib.sha256)
    assert [seal_key.hex(), nonce.hex(), aad.hex()] == [
        v["seal_key_hex"],
        v["nonce_hex"],
        v["aad_hex"],
    ]
    assert [plaintext.hex(), sealed.hex()] == [v["plaintext_hex"], v["sealed_hex"]]
    assert [envelope.hex(), tag.hex()] == [v["envelope_hex"], v["mac_hex"]]
    assert (envelope + tag).hex() == v["frame_hex"]


@pytest.mark.parametrize("v", VECTORS, ids=[v["subject"] for v in VECTORS])
def test_amcp_seals_and_opens_each_vector(v: dict[str, Any]) -> None:
    now = v["ts_ms"] / 1000
    ring = Keyring([Key(v["kid"], bytes.fromhex(v["key_hex"]), now - 100, now - 100)])
    policy = SealPolicy([v["subject"]])
    sealer = Sealer(v["sender"], ring, clock=lambda: now, epoch=v["epoch"], sealed=policy)
    sealer._id_prefix = bytes.fromhex(v["msg_id_hex"])[:8]
    sealer.seq = v["seq"] - 1
    frame = sealer.seal(v["subject"], v["body"], headers=v["headers"] or None)
    assert frame.hex() == v["frame_hex"]
    opener = Opener(ring, clock=lambda: now, guard=ReplayGuard(), sealed=policy)
    assert opener.open(v["subject"], bytes.fromhex(v["frame_hex"])).body == v["body"]
