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

from dataclasses import dataclass, field
from typing import Any

import msgpack

from amcp.errors import EncodeError, FrameRejected

__all__ = [
    "FLAG_BATCH",
    "FLAG_COMPRESSED",
    "MAC_SIZE",
    "VERSION",
    "Envelope",
    "FrameLimits",
    "Reason",
    "check_depth",
    "pack_envelope",
    "unpack_envelope",
]

VERSION = 1
MAC_SIZE = 32
MSG_ID_SIZE = 16
FLAG_COMPRESSED = 0x01  # body is zlib(msgpack(body)) carried as bin
FLAG_BATCH = 0x02  # body is a list of inner messages (netopt batching)
KNOWN_FLAGS = FLAG_COMPRESSED | FLAG_BATCH
_U64 = 1 << 64


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
    max_headers: int = 64
    max_header_bytes: int = 4096
    max_name_chars: int = 128


@dataclass(slots=True)
class Envelope:
    """One decoded (not yet verified) envelope. Plain slots: this is the hot path."""

    version: int
    flags: int
    msg_id: bytes
    sender: str
    epoch: int
    seq: int
    ts_ms: int
    kid: str
    kind: str
    headers: dict[str, str]
    body: Any
    signed: bytes = field(default=b"", repr=False)  # the exact envelope bytes the MAC covers
    mac: bytes = field(default=b"", repr=False)


_packer = msgpack.Packer(use_bin_type=True, autoreset=True)


def pack_envelope(fields: list[Any]) -> bytes:
    """Encode the 11 envelope fields; raises EncodeError for values msgpack cannot carry."""
    try:
        return _packer.pack(fields)
    except (TypeError, ValueError, OverflowError) as exc:
        _packer.reset()
        raise EncodeError(f"cannot encode message: {exc}") from None


def _no_ext(code: int, data: bytes) -> Any:
    raise ValueError(f"msgpack extension type {code} is not allowed")


def check_depth(value: Any, limit: int) -> bool:
    """True when `value` nests lists/maps no deeper than `limit` (iterative: no recursion)."""
    if not isinstance(value, (list, dict)):
        return True
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return False
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, (list, dict)):
                stack.append((child, depth + 1))
    return True


def unpack_envelope(frame: bytes, limits: FrameLimits) -> Envelope:
    """Decode and type-check a frame. Raises FrameRejected(oversize|malformed) only."""
    size = len(frame)
    if size > limits.max_frame_bytes:
        raise FrameRejected(Reason.OVERSIZE, f"{size} bytes > {limits.max_frame_bytes}")
    if size <= MAC_SIZE:
        raise FrameRejected(Reason.MALFORMED, "truncated frame")
    signed = frame[:-MAC_SIZE]
    try:
        fields = msgpack.unpackb(signed, raw=False, strict_map_key=True, ext_hook=_no_ext)
    except Exception as exc:  # msgpack raises many types on garbage; all mean the same here
        raise FrameRejected(
            Reason.MALFORMED, f"not a msgpack envelope ({type(exc).__name__})"
        ) from None
    if type(fields) is not list or len(fields) != 11:
        raise FrameRejected(Reason.MALFORMED, "envelope is not an 11-element array")
    version, flags, msg_id, sender, epoch, seq, ts_ms, kid, kind, headers, body = fields
    if version != VERSION or type(version) is not int:
        raise FrameRejected(Reason.MALFORMED, f"unsupported version {version!r}")
    if type(flags) is not int or flags & ~KNOWN_FLAGS:
        raise FrameRejected(Reason.MALFORMED, "unknown flags")
    if type(msg_id) is not bytes or len(msg_id) != MSG_ID_SIZE:
        raise FrameRejected(Reason.MALFORMED, "msg_id must be 16 bytes")
    names = limits.max_name_chars
    for name, value in (("sender", sender), ("kid", kid), ("kind", kind)):
        if type(value) is not str or not 0 < len(value) <= names:
            raise FrameRejected(Reason.MALFORMED, f"{name} must be a non-empty string")
    for name, value in (("epoch", epoch), ("seq", seq), ("ts", ts_ms)):
        if type(value) is not int or not 0 <= value < _U64:
            raise FrameRejected(Reason.MALFORMED, f"{name} must be an unsigned 64-bit integer")
    if type(headers) is not dict or len(headers) > limits.max_headers:
        raise FrameRejected(Reason.MALFORMED, "headers must be a small map")
    if headers:
        total = 0
        for k, v in headers.items():
            if type(k) is not str or type(v) is not str:
                raise FrameRejected(Reason.MALFORMED, "header names and values must be strings")
            total += len(k) + len(v)
        if total > limits.max_header_bytes:
            raise FrameRejected(Reason.MALFORMED, "headers too large")
    if (type(body) is list or type(body) is dict) and not check_depth(body, limits.max_depth):
        raise FrameRejected(Reason.MALFORMED, f"body nested deeper than {limits.max_depth}")
    return Envelope(
        version,
        flags,
        msg_id,
        sender,
        epoch,
        seq,
        ts_ms,
        kid,
        kind,
        headers,
        body,
        signed,
        frame[-MAC_SIZE:],
    )
