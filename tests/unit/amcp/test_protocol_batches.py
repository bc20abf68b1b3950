"""Sealer and Opener with batch and compressed frames: sans-I/O, no server."""

from __future__ import annotations

import time
import zlib

import msgpack
import pytest

from amcp.envelope import FLAG_BATCH, FLAG_COMPRESSED, MAC_SIZE, FrameLimits, Reason
from amcp.errors import EncodeError, FrameRejected
from amcp.framebody import encode_item
from amcp.protocol import Opener, Sealer

SUBJECT = "orders.created"


def items(n: int, start: int = 0) -> list:
    return [encode_item("msg", None, {"i": i}) for i in range(start, start + n)]


def flags_of(frame: bytes) -> int:
    return msgpack.unpackb(frame[:-MAC_SIZE])[1]


def test_a_lone_item_is_the_same_frame_seal_makes(ring):
    now = time.time()
    a = Sealer("alice", ring, clock=lambda: now, epoch=7)
    b = Sealer("alice", ring, clock=lambda: now, epoch=7)
    b._id_prefix = a._id_prefix
    assert a.seal(SUBJECT, {"x": 1}, "evt", {"h": "v"}) == b.seal_items(
        SUBJECT, [encode_item("evt", {"h": "v"}, {"x": 1})]
    )


def test_batch_round_trip_keeps_each_message_and_its_own_seq(ring):
    sealer, opener = Sealer("alice", ring), Opener(ring)
    sent = [
        encode_item("msg", None, "first"),
        encode_item("evt", {"trace": "t1"}, {"n": [1, 2]}),
        encode_item("msg", None, b"\x00\x01"),
    ]
    frame = sealer.seal_items(SUBJECT, sent)
    assert flags_of(frame) == FLAG_BATCH
    batch = opener.open(SUBJECT, frame)
    assert batch.kind == "batch" and batch.seq == 1
    inner, dropped = opener.split(batch)
    assert dropped == []
    assert [(m.seq, m.kind, m.headers, m.body) for m in inner] == [
        (2, "msg", {}, "first"),
        (3, "evt", {"trace": "t1"}, {"n": [1, 2]}),
        (4, "msg", {}, b"\x00\x01"),
    ]
    assert all(m.sender == "alice" and m.subject == SUBJECT for m in inner)
    assert len({m.msg_id for m in inner} | {batch.msg_id}) == 4
    assert sealer.seq == 4  # the next message continues after the inner ones
    assert opener.open_all(SUBJECT, sealer.seal(SUBJECT, "next"))[0].seq == 5


def test_a_replayed_inner_seq_is_dropped_and_counted_the_others_arrive(ring):
    sealer, opener = Sealer("alice", ring), Opener(ring)
    first = opener.open_all(SUBJECT, sealer.seal_items(SUBJECT, items(3)))
    assert [m.seq for m in first] == [2, 3, 4]
    # A correctly signed batch (fresh frame seq 5) whose middle message reuses seq 3.
    body = [3, [[6, 0, "msg", {}, "a"], [3, 0, "msg", {}, "replayed"], [7, 0, "msg", {}, "b"]]]
    frame = sealer.seal(SUBJECT, body, "batch", flags=FLAG_BATCH, seq=5)
    inner, dropped = opener.split(opener.open(SUBJECT, frame))
    assert [m.body for m in inner] == ["a", "b"]
    assert [d.reason for d in dropped] == [Reason.REPLAY]
    assert opener.stats.counts[Reason.REPLAY] == 1
    # The same seq twice inside one batch: the second is the replay.
    body = [2, [[9, 0, "msg", {}, "c"], [9, 0, "msg", {}, "c again"]]]
    inner, _ = opener.split(
        opener.open(SUBJECT, sealer.seal(SUBJECT, body, "batch", flags=FLAG_BATCH, seq=8))
    )
    assert [m.body for m in inner] == ["c"]
    assert opener.stats.counts[Reason.REPLAY] == 2


def test_a_replayed_batch_frame_is_refused_whole(ring):
    sealer, opener = Sealer("alice", ring), Opener(ring)
    frame = sealer.seal_items(SUBJECT, items(4))
    assert len(opener.open_all(SUBJECT, frame)) == 4
    with pytest.raises(FrameRejected) as info:
        opener.open_all(SUBJECT, frame)
    assert info.value.reason == Reason.REPLAY


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ([3, [[2, 0, "msg", {}, 1], [3, 0, "msg", {}, 2]]], "batch count 3 but 2"),
        ([1, [[2, FLAG_BATCH, "msg", {}, [1, [[3, 0, "msg", {}, 1]]]]]], "nested batch"),
        ("not a batch", "batch body must be"),
    ],
)
def test_malformed_batch_frames_are_refused_and_counted(ring, body, detail):
    sealer, opener = Sealer("alice", ring), Opener(ring)
    frame = sealer.seal(SUBJECT, body, "batch", flags=FLAG_BATCH)
    with pytest.raises(FrameRejected) as info:
        opener.open(SUBJECT, frame)
    assert info.value.reason == Reason.MALFORMED and detail in info.value.detail
    assert opener.stats.counts[Reason.MALFORMED] == 1
    # The refused frame's seq was not recorded; the next good frame goes through.
    assert opener.open_all(SUBJECT, sealer.seal(SUBJECT, "good"))[0].body == "good"


def test_compression_is_used_only_when_it_shrinks_and_is_covered_by_the_mac(ring):
    sealer, opener = Sealer("alice", ring, compress_threshold=512), Opener(ring)
    text = {"log": "the same line again\n" * 200}
    frame = sealer.seal(SUBJECT, text)
    assert flags_of(frame) == FLAG_COMPRESSED
    assert len(frame) < len(Sealer("bob", ring).seal(SUBJECT, text)) / 5
    assert opener.open(SUBJECT, frame).body == text
    assert flags_of(sealer.seal(SUBJECT, {"small": 1})) == 0  # under the threshold
    assert flags_of(sealer.seal(SUBJECT, bytes(range(256)) * 4)) in (0, FLAG_COMPRESSED)
    batch = sealer.seal_items(SUBJECT, [encode_item("msg", None, text)] * 3)
    assert flags_of(batch) == FLAG_BATCH | FLAG_COMPRESSED
    assert [m.body for m in opener.open_all(SUBJECT, batch)] == [text] * 3
    # Clearing the flag bit (byte 2 of the envelope) breaks the MAC.
    frame = sealer.seal(SUBJECT, text)
    tampered = frame[:2] + bytes([frame[2] & ~FLAG_COMPRESSED]) + frame[3:]
    with pytest.raises(FrameRejected) as info:
        opener.open(SUBJECT, tampered)
    assert info.value.reason == Reason.BAD_SIGNATURE


def test_random_bytes_are_not_compressed(ring):
    import os

    sealer = Sealer("alice", ring, compress_threshold=64)
    assert flags_of(sealer.seal(SUBJECT, os.urandom(4096))) == 0


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (zlib.compress(msgpack.packb(bytes(8 << 20)), 9), Reason.OVERSIZE),  # 8 MiB inflated
        (zlib.compress(msgpack.packb("z" * 500_000), 9), Reason.OVERSIZE),  # ratio ~1000
        (b"\x78\x9c definitely not deflate", Reason.MALFORMED),
        (zlib.compress(msgpack.packb([1, 2, 3]))[:-3], Reason.MALFORMED),  # truncated
        ("a str, not bin", Reason.MALFORMED),
    ],
)
def test_bad_compressed_bodies_are_refused_and_counted(ring, payload, reason):
    sealer, opener = Sealer("alice", ring), Opener(ring)
    frame = sealer.seal(SUBJECT, payload, flags=FLAG_COMPRESSED)
    with pytest.raises(FrameRejected) as info:
        opener.open(SUBJECT, frame)
    assert info.value.reason == reason
    assert opener.stats.counts[reason] == 1
    assert opener.open_all(SUBJECT, sealer.seal(SUBJECT, "after"))[0].body == "after"


def test_an_inner_body_may_nest_as_deep_as_a_lone_one(ring):
    deep: object = "leaf"
    for _ in range(FrameLimits().max_depth):
        deep = [deep]
    sealer, opener = Sealer("alice", ring), Opener(ring)
    assert opener.open(SUBJECT, sealer.seal(SUBJECT, deep)).body == deep
    frame = sealer.seal_items(SUBJECT, [encode_item("msg", None, deep)] * 2)
    assert [m.body for m in opener.open_all(SUBJECT, frame)] == [deep, deep]


def test_a_batch_too_big_for_a_frame_raises_and_uses_no_seq(ring):
    sealer = Sealer("alice", ring, limits=FrameLimits(max_frame_bytes=4096))
    big = [encode_item("msg", None, "x" * 1000)] * 5
    with pytest.raises(EncodeError, match="exceeds"):
        sealer.seal_items(SUBJECT, big)
    assert sealer.seq == 0
    assert len(sealer.seal_items(SUBJECT, big[:3])) < 4096
