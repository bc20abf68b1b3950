"""Verify before decode (issue 14, point 3): a frame's body is decoded only once its MAC
verified, so a stranger's frame costs the fixed fields and the MAC whatever its body holds,
and is refused as `bad_signature` however broken the body; with a valid MAC the same body
is `malformed`. The envelope has exactly 11 fields. Compiled `open` and reference alike."""

from __future__ import annotations

import importlib.util
import time

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amcp import Keyring
from amcp.envelope import FLAG_BATCH, FrameLimits, py_scan_value
from amcp.errors import FrameRejected
from amcp.framebody import batch_body, encode_item
from amcp.protocol import Opener, Sealer

if importlib.util.find_spec("amcp._speedups") is not None:
    from amcp._speedups import scan_value  # the compiled scan, even under AMCP_NO_SPEEDUPS
else:
    scan_value = py_scan_value

SUBJECT = "hostile.x"
LIMITS = FrameLimits(max_depth=8, max_containers=64)
# Bodies no decoder should be asked to decode for a stranger: too deep, too many lists,
# extension types (the timestamp, -1, which msgspec would decode to a datetime, included),
# reserved bytes, truncated, trailing values.
broken = st.one_of(
    st.integers(10, 5000).map(lambda n: b"\x91" * n + b"\xc0"),
    st.integers(65, 3000).map(lambda n: b"\xdc" + n.to_bytes(2, "big") + b"\x90" * n),
    st.sampled_from(
        [
            b"\xd6\xff\x00\x00\x00\x00",
            b"\xd7\xff" + bytes(8),
            b"\x92\x01\xc7\x0c\xff" + bytes(12),
            b"\xc7\x01\x05x",
            b"\xc1",
            b"\xc0\xc0",
            b"\xdd\xff\xff\xff\xff",
        ]
    ),
)


def frame(sealer: Sealer, raw: bytes, *, signed: bool, fields: bytes = b"\x9b") -> bytes:
    now = time.time()
    key = sealer.current_key(now)
    sealer.seq += 1
    head = sealer._prefix(0, sealer.seq, now, key)[1:] + encode_item("msg", None, None)[0]
    envelope = fields + head + raw + (b"\xc0" if fields == b"\x9c" else b"")
    return key.mac.seal(SUBJECT, envelope) if signed else envelope + bytes(32)


def reason(opener: Opener, open_: str, data: bytes) -> str:
    with pytest.raises(FrameRejected) as rejected:
        getattr(opener, open_)(SUBJECT, data)
    return rejected.value.reason


@pytest.mark.parametrize("open_", ["open", "_open"])
@given(raw=broken)
def test_a_strangers_body_is_never_decoded(open_: str, raw: bytes) -> None:
    ring = Keyring.generate()
    opener, sealer = Opener(ring, limits=LIMITS), Sealer("mallory", ring)
    assert reason(opener, open_, frame(sealer, raw, signed=False)) == "bad_signature"
    assert reason(opener, open_, frame(sealer, raw, signed=True)) == "malformed"
    assert opener.stats.as_dict()["bad_signature"] == 1
    good = sealer.seal(SUBJECT, "fine")
    assert getattr(opener, open_)(SUBJECT, good).body == "fine"


@pytest.mark.parametrize("open_", ["open", "_open"])
@pytest.mark.parametrize("fields", [b"\x9a", b"\x9c", b"\x9f"])
def test_an_envelope_of_other_than_11_fields_is_malformed(open_: str, fields: bytes) -> None:
    ring = Keyring.generate()
    opener, sealer = Opener(ring), Sealer("s", ring)
    assert reason(opener, open_, frame(sealer, b"\xc0", signed=True, fields=fields)) == "malformed"


def test_a_body_at_the_limits_is_accepted() -> None:
    ring = Keyring.generate()
    opener, sealer = Opener(ring, limits=LIMITS), Sealer("s", ring)
    body = [[] for _ in range(63)]  # 64 lists with the outer one
    assert opener.open(SUBJECT, sealer.seal(SUBJECT, body)).body == body
    deep: list = []
    for _ in range(7):
        deep = [deep]
    assert opener.open(SUBJECT, sealer.seal(SUBJECT, deep)).body == deep  # 8 levels


# msgpack-like bytes: real encodings of nested values, cut or extended at random, and noise.
values = st.recursive(
    st.one_of(
        st.none(), st.integers(-(2**63), 2**64 - 1), st.text(max_size=4), st.binary(max_size=4)
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=2), inner, max_size=3)
    ),
    max_leaves=20,
)
encoded = values.map(msgspec.msgpack.encode)
scanned = st.one_of(
    encoded,
    st.tuples(encoded, st.binary(max_size=4)).map(lambda t: t[0] + t[1]),
    st.tuples(encoded, st.integers(0, 40)).map(lambda t: t[0][: t[1]]),
    st.binary(max_size=40),
)


@settings(max_examples=500)
@given(scanned, st.integers(0, 3), st.integers(0, 6), st.integers(0, 12))
def test_compiled_and_reference_scans_agree(data: bytes, at: int, depth: int, most: int) -> None:
    at = min(at, len(data))
    assert scan_value(data, at, depth, most) == py_scan_value(data, at, depth, most)


@pytest.mark.parametrize("open_", ["open", "_open"])
def test_the_header_budget_counts_utf8_bytes(open_: str) -> None:
    ring = Keyring.generate()
    opener, sealer = Opener(ring), Sealer("s", ring)
    fits = {"k": "\u00e9" * 2047}  # 1 + 4094 bytes
    assert getattr(opener, open_)(SUBJECT, sealer.seal(SUBJECT, 1, "msg", fits)).headers == fits
    over = {"k": "\u00e9" * 2048}  # 2049 characters, 4097 bytes
    assert reason(opener, open_, sealer.seal(SUBJECT, 1, "msg", over)) == "malformed"
    batch = sealer.seal_items(SUBJECT, [encode_item("msg", over, 1), encode_item("msg", None, 2)])
    assert reason(opener, open_, batch) == "malformed"


@pytest.mark.parametrize("open_", ["open", "_open"])
@pytest.mark.parametrize("head", [("msg", None), ("batch", {"trace": "x"})])
def test_a_batch_frame_has_kind_batch_and_no_headers(open_: str, head: tuple) -> None:
    ring = Keyring.generate()
    opener, sealer = Opener(ring), Sealer("s", ring)
    now = time.time()
    key = sealer.current_key(now)
    items = [encode_item("msg", None, 1), encode_item("msg", None, 2)]
    prefix = sealer._prefix(FLAG_BATCH, 1, now, key) + encode_item(*head, None)[0]
    frame = key.mac.seal(SUBJECT, prefix + batch_body(2, items))
    assert reason(opener, open_, frame) == "malformed"
    good = sealer.seal_items(SUBJECT, items)
    assert [m.body for m in opener.open_all(SUBJECT, good)] == [1, 2]
