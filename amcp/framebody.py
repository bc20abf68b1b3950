"""The body field of a frame under its flags: compressed bodies and batch bodies.

A message bound for a batch is encoded once, when it is published, into an `Item`: its
packed kind and headers (`head`) and its packed body. Those are exactly the last three
envelope fields, so a lone item becomes a plain frame and several become one batch frame
without re-encoding anything. docs/PROTOCOL.md ("Batches and compression") has the bytes.

    batch body = [n, [m_1, ..., m_n]]             (FLAG_BATCH; 1 <= n <= limits.max_batch)
    m_i        = [seq, flags, kind, headers, body]   (flags 0: a batch never nests)
    compressed = bin(zlib(msgpack(body)))        (FLAG_COMPRESSED; batch bodies too)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from amcp.envelope import (
    FLAG_BATCH,
    MAX_HEADERS,
    MAX_NAME_CHARS,
    FrameLimits,
    Reason,
    body_limits,
    scan_value,
)
from amcp.errors import EncodeError, FrameRejected
from netopt import DecompressionError, compress_if_smaller, decompress_bounded

__all__ = [
    "BATCH_KIND",
    "Inner",
    "Item",
    "batch_body",
    "check_batch",
    "compress_body",
    "encode_item",
    "inflate_body",
]

BATCH_KIND = "batch"
"""The `kind` of a batch frame's envelope (the inner messages carry their own)."""

Item = tuple[bytes, bytes]
"""A message encoded for batching: (msgpack(kind) + msgpack(headers), msgpack(body))."""


class Inner(msgspec.Struct, array_like=True, gc=False):
    """One inner message of a batch, type-checked in C like the envelope."""

    seq: Annotated[int, Meta(ge=0)]
    flags: Annotated[int, Meta(ge=0, le=0)]
    kind: Annotated[str, Meta(min_length=1, max_length=MAX_NAME_CHARS)]
    headers: Annotated[dict[str, str], Meta(max_length=MAX_HEADERS)]
    body: Any


_BatchBody = tuple[Annotated[int, Meta(ge=1)], list[Inner]]
_INNER_FIELDS = 5


def _no_ext(code: int, data: memoryview) -> Any:
    raise ValueError(f"msgpack extension type {code} is not allowed")


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(ext_hook=_no_ext)
_heads: dict[str, bytes] = {}  # kind -> packed (kind, {}): most messages carry no headers
_INNER = b"\x95"  # fixarray of 5
_NO_FLAGS = b"\x00"
_BATCH_ARRAY = b"\x92"  # [n, [...]]


def encode_item(kind: str, headers: dict[str, str] | None, body: Any) -> Item:
    """Encode one message for batching; raises EncodeError for what msgpack cannot carry."""
    try:
        if headers:
            head = _encoder.encode(kind) + _encoder.encode(headers)
        else:
            head = _heads.get(kind)
            if head is None:
                head = _encoder.encode(kind) + b"\x80"
                if len(_heads) < 256:  # kinds are few; stay bounded if they are not
                    _heads[kind] = head
        return head, _encoder.encode(body)
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError) as exc:
        raise EncodeError(f"cannot encode message: {exc}") from None


def _array_header(n: int) -> bytes:
    if n < 16:
        return bytes((0x90 | n,))
    if n < 0x10000:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


def batch_body(first_seq: int, items: Sequence[Item]) -> bytes:
    """The packed batch body of `items`, numbered `first_seq`, `first_seq + 1`, ..."""
    encode = _encoder.encode
    parts = [_BATCH_ARRAY, encode(len(items)), _array_header(len(items))]
    seq = first_seq
    for head, body in items:
        parts += (_INNER, encode(seq), _NO_FLAGS, head, body)
        seq += 1
    return b"".join(parts)


def compress_body(raw: bytes, threshold: int, max_ratio: float) -> bytes | None:
    """The bin field carrying zlib(`raw`), or None if compressing does not pay: `raw` is
    under `threshold` bytes, the frame would not shrink, or the ratio would pass what a
    receiver accepts (the message then goes uncompressed, never refused)."""
    if len(raw) < threshold:
        return None
    packed, smaller = compress_if_smaller(raw, threshold=0)
    if not smaller or len(raw) > max_ratio * len(packed):
        return None
    field = _encoder.encode(packed)
    return field if len(field) < len(raw) else None


def inflate_body(body: Any, flags: int, limits: FrameLimits) -> Any:
    """The value a compressed body carries; FrameRejected(oversize|malformed) if it is not
    a bin, inflates past the limits, does not inflate, or does not decode."""
    if type(body) is not bytes:
        raise FrameRejected(Reason.MALFORMED, "compressed body must be bin")
    try:
        raw = decompress_bounded(body, limits.max_frame_bytes, limits.max_inflate_ratio)
    except DecompressionError as exc:
        raise FrameRejected(exc.reason, f"compressed body {exc.detail}") from None
    fault = scan_value(raw, 0, *body_limits(flags, limits))
    if fault is not None:
        raise FrameRejected(Reason.MALFORMED, f"compressed {fault}")
    try:
        return _decoder.decode(raw)
    except Exception as exc:  # msgpack raises many types on garbage; all mean the same here
        raise FrameRejected(
            Reason.MALFORMED, f"compressed body is not msgpack ({type(exc).__name__})"
        ) from None


def check_batch(body: Any, limits: FrameLimits) -> list[Inner]:
    """The inner messages of a batch body, validated; FrameRejected(malformed) names the
    first fault.

    The whole frame is refused on any fault: its sender is broken, and delivering part of
    a frame whose shape is wrong would be guessing.
    """
    if type(body) is not list or len(body) != 2 or type(body[1]) is not list:
        raise FrameRejected(Reason.MALFORMED, "batch body must be [count, [messages]]")
    n, inners = body
    if type(n) is not int or not 1 <= n <= limits.max_batch:
        raise FrameRejected(Reason.MALFORMED, f"batch count must be 1 to {limits.max_batch}")
    if len(inners) != n:
        raise FrameRejected(Reason.MALFORMED, f"batch count {n} but {len(inners)} messages")
    try:
        _, checked = msgspec.convert(body, _BatchBody)
    except msgspec.ValidationError:
        raise FrameRejected(Reason.MALFORMED, _explain(inners)) from None
    cap = limits.max_header_bytes
    for inner in checked:
        headers = inner.headers
        if headers and sum(len(k.encode()) + len(v.encode()) for k, v in headers.items()) > cap:
            raise FrameRejected(
                Reason.MALFORMED, f"inner message seq {inner.seq}: headers too large"
            )
    return checked


def _explain(inners: list[Any]) -> str:
    """Slow path: name the first inner message that failed the typed check, and why."""
    for i, inner in enumerate(inners, 1):
        if type(inner) is not list or len(inner) != _INNER_FIELDS:
            return f"inner message {i} is not a {_INNER_FIELDS}-element array"
        seq, flags, kind, headers, _ = inner
        if type(seq) is not int or seq < 0:
            return f"inner message {i}: seq must be an unsigned 64-bit integer"
        if type(flags) is int and flags & FLAG_BATCH:
            return f"inner message {i}: nested batch"
        if type(flags) is not int or flags:
            return f"inner message {i}: flags must be 0"
        if type(kind) is not str or not 0 < len(kind) <= MAX_NAME_CHARS:
            return f"inner message {i}: kind must be a string of 1 to {MAX_NAME_CHARS} characters"
        if (
            type(headers) is not dict
            or len(headers) > MAX_HEADERS
            or not all(type(k) is str and type(v) is str for k, v in headers.items())
        ):
            return f"inner message {i}: headers must be a small map of strings to strings"
    return "batch body does not type-check"
