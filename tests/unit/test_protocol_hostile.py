"""Verify before decode (issue 14, point 3): a frame's body is decoded only once its MAC
verified, so a stranger's frame costs the fixed fields and the MAC whatever its body holds,
and is refused as `bad_signature` however broken the body; with a valid MAC the same body
is `malformed`. The envelope has exactly 11 fields. Compiled `open` and reference alike."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amcp import Keyring
from amcp.envelope import FrameLimits
from amcp.errors import FrameRejected
from amcp.framebody import encode_item
from amcp.protocol import Opener, Sealer

SUBJECT = "hostile.x"
LIMITS = FrameLimits(max_depth=8)
# Bodies no decoder should be asked to decode for a stranger: too deep, an extension type,
# reserved bytes, truncated, trailing values. (The timestamp extension, -1, which msgspec
# decodes natively, is issue 13 point 6: not refused yet.)
broken = st.one_of(
    st.integers(10, 5000).map(lambda n: b"\x91" * n + b"\xc0"),
    st.sampled_from(
        [
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
