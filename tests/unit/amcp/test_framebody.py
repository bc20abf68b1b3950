"""Batch and compressed frame bodies (amcp.framebody): encoding, validation, bounded inflate."""

from __future__ import annotations

import os
import zlib

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from amcp.envelope import FLAG_BATCH, FrameLimits, Reason
from amcp.errors import EncodeError, FrameRejected
from amcp.framebody import (
    batch_body,
    check_batch,
    compress_body,
    encode_item,
    inflate_body,
)

LIMITS = FrameLimits()
bodies = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text() | st.binary(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
kinds = st.text(min_size=1, max_size=20)
headers = st.none() | st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3)


@given(st.lists(st.tuples(kinds, headers, bodies), min_size=1, max_size=20), st.integers(0, 2**63))
def test_batch_body_decodes_to_numbered_inner_messages(messages, first_seq):
    items = [encode_item(k, h, b) for k, h, b in messages]
    decoded = msgpack.unpackb(batch_body(first_seq, items), raw=False)
    assert decoded[0] == len(messages)
    for i, (kind, hdrs, body) in enumerate(messages):
        assert decoded[1][i] == [first_seq + i, 0, kind, hdrs or {}, body]
    inners = check_batch(decoded, LIMITS)
    assert [(m.seq, m.kind, m.headers, m.body) for m in inners] == [
        (first_seq + i, k, h or {}, b) for i, (k, h, b) in enumerate(messages)
    ]


def test_item_is_the_envelope_tail():
    """A lone item is exactly what pack_envelope puts after the eighth field."""
    head, body = encode_item("msg", {"a": "b"}, {"x": [1, 2]})
    assert head + body == b"".join(
        msgpack.packb(v, use_bin_type=True) for v in ("msg", {"a": "b"}, {"x": [1, 2]})
    )


def test_unencodable_body_raises_encode_error():
    with pytest.raises(EncodeError):
        encode_item("msg", None, object())


def _good(n: int = 3) -> list:
    return msgpack.unpackb(batch_body(10, [encode_item("msg", None, i) for i in range(n)]))


@pytest.mark.parametrize(
    ("mutate", "detail"),
    [
        (lambda b: b.__setitem__(0, 4), "batch count 4 but 3"),
        (lambda b: b.__setitem__(0, 2), "batch count 2 but 3"),
        (lambda b: b.__setitem__(0, 0), "batch count must be"),
        (lambda b: b.__setitem__(0, "3"), "batch count must be"),
        (lambda b: b[1].append(b[1][0]), "batch count 3 but 4"),
        (lambda b: b[1][1].__setitem__(1, FLAG_BATCH), "nested batch"),
        (lambda b: b[1][1].__setitem__(1, 1), "flags must be 0"),
        (lambda b: b[1][1].__setitem__(0, -1), "seq must be"),
        (lambda b: b[1][1].__setitem__(2, ""), "kind must be"),
        (lambda b: b[1][1].__setitem__(3, {"a": 1}), "headers must be"),
        (lambda b: b[1].__setitem__(1, [1, 2]), "not a 5-element array"),
        (lambda b: b[1][1].__setitem__(3, {"h": "x" * 5000}), "headers too large"),
        (lambda b: b.append(1), "must be [count, [messages]]"),
    ],
)
def test_malformed_batches_are_refused_whole(mutate, detail):
    body = _good()
    mutate(body)
    with pytest.raises(FrameRejected) as info:
        check_batch(body, LIMITS)
    assert info.value.reason == Reason.MALFORMED
    assert detail in info.value.detail


def test_batch_count_is_bounded():
    body = _good(5)
    with pytest.raises(FrameRejected, match="count must be 1 to 4"):
        check_batch(body, FrameLimits(max_batch=4))
    for shape in ([], {"n": 1}, [1, 2], [1, [[1, 0, "msg", {}, 1]], 3]):
        with pytest.raises(FrameRejected, match="must be"):
            check_batch(shape, LIMITS)


def test_compression_only_when_it_pays():
    text = msgpack.packb({"text": "all work and no play " * 200})
    field = compress_body(text, 1024, 100.0)
    assert field is not None and len(field) < len(text)
    assert inflate_body(msgpack.unpackb(field), 0, LIMITS) == msgpack.unpackb(text)
    assert compress_body(text[:500], 1024, 100.0) is None  # under the threshold
    assert compress_body(msgpack.packb(os.urandom(4096)), 1024, 100.0) is None  # would grow
    # Past the ratio a receiver accepts: sent uncompressed rather than refused over there.
    assert compress_body(msgpack.packb(bytes(100_000)), 1024, 100.0) is None


def test_bombs_and_garbage_are_refused():
    bomb = zlib.compress(msgpack.packb(bytes(4 << 20)), 9)  # 4 MiB of zeros
    with pytest.raises(FrameRejected) as info:
        inflate_body(bomb, 0, LIMITS)
    assert info.value.reason == Reason.OVERSIZE
    ratio_bomb = zlib.compress(msgpack.packb(bytes(200_000)), 9)  # under 1 MiB, ratio ~200
    with pytest.raises(FrameRejected) as info:
        inflate_body(ratio_bomb, 0, LIMITS)
    assert info.value.reason == Reason.OVERSIZE
    for garbage in (b"not zlib at all", zlib.compress(b"\xc1"), "text", 7):
        with pytest.raises(FrameRejected) as info:
            inflate_body(garbage, 0, LIMITS)
        assert info.value.reason == Reason.MALFORMED


def test_inflated_depth_is_checked_with_room_for_the_batch_levels():
    deep = 1
    for _ in range(LIMITS.max_depth):
        deep = [deep]
    packed = zlib.compress(msgpack.packb(deep))
    assert inflate_body(packed, 0, LIMITS) == deep
    with pytest.raises(FrameRejected, match="nested deeper"):
        inflate_body(zlib.compress(msgpack.packb([deep])), 0, LIMITS)
    batch = [1, [[1, 0, "msg", {}, deep]]]  # the inner body may still nest max_depth deep
    assert inflate_body(zlib.compress(msgpack.packb(batch)), FLAG_BATCH, LIMITS) == batch
