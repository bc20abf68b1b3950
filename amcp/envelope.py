"""The amcp frame: a msgpack envelope followed by its HMAC-SHA256 tag.

Layout (docs/PROTOCOL.md has the bytes and test vectors)::

    frame = msgpack([version, flags, msg_id, sender, epoch, seq, ts_ms, kid, kind, headers, body])
            || mac[32]
    mac   = HMAC-SHA256(key, b"amcp1" || u16be(len(subject)) || subject || envelope_bytes)

The MAC is computed over the envelope bytes exactly as sent, so no peer ever has to
re-encode msgpack canonically, and it covers the subject, so a frame re-published to
another subject fails verification.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from amcp.errors import EncodeError, FrameRejected

__all__ = [
    "BATCH_DEPTH",
    "FLAG_BATCH",
    "FLAG_COMPRESSED",
    "MAC_SIZE",
    "MAX_HEADERS",
    "MAX_NAME_CHARS",
    "VERSION",
    "Envelope",
    "FrameLimits",
    "Reason",
    "check_depth",
    "decode_envelope",
    "encode_envelope",
    "pack_envelope",
    "unpack_envelope",
]

VERSION = 1
MAC_SIZE = 32
MSG_ID_SIZE = 16
MAX_NAME_CHARS = 128  # sender, key id and kind
MAX_HEADERS = 64
FLAG_COMPRESSED = 0x01  # body is zlib(msgpack(body)) carried as bin
FLAG_BATCH = 0x02  # body is a list of inner messages (netopt batching)
KNOWN_FLAGS = FLAG_COMPRESSED | FLAG_BATCH
BATCH_DEPTH = 3  # levels a batch body [n, [[seq, flags, kind, headers, body], ...]] adds


class Reason:
    """Why a frame was rejected; the keys of the bus rejection counters."""

    BAD_SIGNATURE = "bad_signature"
    REPLAY = "replay"
    STALE = "stale"
    UNKNOWN_KEY = "unknown_key"
    MALFORMED = "malformed"
    OVERSIZE = "oversize"
    ALL = (BAD_SIGNATURE, REPLAY, STALE, UNKNOWN_KEY, MALFORMED, OVERSIZE)


@dataclass(frozen=True, slots=True)
class FrameLimits:
    """Bounds every inbound frame must respect before anything else looks at it."""

    max_frame_bytes: int = 1 << 20
    max_depth: int = 32
    max_header_bytes: int = 4096
    max_batch: int = 4096
    """Inner messages in one batch frame (docs/PROTOCOL.md, "Batches and compression")."""
    max_inflate_ratio: float = 100.0
    """A compressed body may inflate to at most this many times its size (and never past
    max_frame_bytes): past either it is a decompression bomb, `oversize`."""


_Name = Annotated[str, Meta(min_length=1, max_length=MAX_NAME_CHARS)]
_U64 = Annotated[int, Meta(ge=0)]  # msgpack integers never exceed 64 bits


class Envelope(msgspec.Struct, array_like=True, gc=False):
    """The 11 envelope fields, decoded and type-checked in one pass (msgspec, in C).

    `array_like` makes the wire form the plain msgpack array of docs/PROTOCOL.md.
    """

    version: Annotated[int, Meta(ge=VERSION, le=VERSION)]
    flags: Annotated[int, Meta(ge=0, le=KNOWN_FLAGS)]
    msg_id: Annotated[bytes, Meta(min_length=MSG_ID_SIZE, max_length=MSG_ID_SIZE)]
    sender: _Name
    epoch: _U64
    seq: _U64
    ts_ms: _U64
    kid: _Name
    kind: _Name
    headers: Annotated[dict[str, str], Meta(max_length=MAX_HEADERS)]
    body: Any


def _no_ext(code: int, data: memoryview) -> Any:
    raise ValueError(f"msgpack extension type {code} is not allowed")


encode_envelope = msgspec.msgpack.Encoder().encode
"""The 11 envelope fields to msgpack; raises msgspec's errors (pack_envelope wraps them)."""
decode_envelope = msgspec.msgpack.Decoder(Envelope, ext_hook=_no_ext).decode
"""Envelope bytes (without the tag) to a type-checked Envelope; raises msgspec errors."""


def pack_envelope(fields: list[Any]) -> bytes:
    """Encode the 11 envelope fields; raises EncodeError for values msgpack cannot carry."""
    try:
        return encode_envelope(fields)
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError) as exc:
        raise EncodeError(f"cannot encode message: {exc}") from None


def check_depth(value: Any, limit: int) -> bool:
    """True when `value` nests lists/maps no deeper than `limit` (iterative: no recursion).

    Level by level with exact type checks: half the cost of a depth-first walk, which
    matters for batch frames, where every inner body is walked.
    """
    if type(value) is not list and type(value) is not dict:
        return True
    level = [value]
    depth = 1
    while True:
        below = []
        for node in level:
            for child in node.values() if type(node) is dict else node:
                if type(child) is list or type(child) is dict:
                    below.append(child)
        if not below:
            return True
        depth += 1
        if depth > limit:
            return False
        level = below


def unpack_envelope(frame: bytes, limits: FrameLimits) -> tuple[Envelope, bytes, bytes]:
    """Decode and type-check a frame into (envelope, signed bytes, tag).

    Raises FrameRejected(oversize|malformed) only. Nothing here is authenticated yet.
    """
    size = len(frame)
    if size > limits.max_frame_bytes:
        raise FrameRejected(Reason.OVERSIZE, f"{size} bytes > {limits.max_frame_bytes}")
    if size <= MAC_SIZE:
        raise FrameRejected(Reason.MALFORMED, "truncated frame")
    signed = frame[:-MAC_SIZE]
    try:
        env = decode_envelope(signed)
    except Exception as exc:  # ValidationError, DecodeError, RecursionError, ...: all garbage
        raise FrameRejected(Reason.MALFORMED, f"bad envelope: {exc}") from None
    headers = env.headers
    if headers and sum(len(k) + len(v) for k, v in headers.items()) > limits.max_header_bytes:
        raise FrameRejected(Reason.MALFORMED, "headers too large")
    body = env.body
    if (type(body) is list or type(body) is dict) and not check_depth(
        body, limits.max_depth + BATCH_DEPTH if env.flags & FLAG_BATCH else limits.max_depth
    ):
        raise FrameRejected(Reason.MALFORMED, f"body nested deeper than {limits.max_depth}")
    return env, signed, frame[-MAC_SIZE:]
