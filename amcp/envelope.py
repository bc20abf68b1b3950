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

import gc
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from amcp.errors import EncodeError, FrameRejected
from amcp.speedups import compiled

__all__ = [
    "BATCH_DEPTH",
    "FLAG_BATCH",
    "FLAG_COMPRESSED",
    "FLAG_SEALED",
    "MAC_SIZE",
    "MAX_HEADERS",
    "MAX_NAME_CHARS",
    "VERSION",
    "Envelope",
    "FrameLimits",
    "Reason",
    "body_start",
    "check_depth",
    "decode_body",
    "decode_envelope",
    "decode_head",
    "encode_envelope",
    "pack_envelope",
    "py_scan_value",
    "scan_value",
    "unpack_envelope",
]

VERSION = 1
MAC_SIZE = 32
MSG_ID_SIZE = 16
MAX_NAME_CHARS = 128  # sender, key id and kind
MAX_HEADERS = 64
FLAG_COMPRESSED = 0x01  # body is zlib(msgpack(body)) carried as bin
FLAG_BATCH = 0x02  # body is a list of inner messages (netopt batching)
FLAG_SEALED = 0x04  # body is AES-256-GCM ciphertext as bin (amcp.sealing)
KNOWN_FLAGS = FLAG_COMPRESSED | FLAG_BATCH | FLAG_SEALED
BATCH_DEPTH = 3  # levels a batch body [n, [[seq, flags, kind, headers, body], ...]] adds


class Reason:
    """Why a frame was rejected; the keys of the bus rejection counters."""

    BAD_SIGNATURE = "bad_signature"
    REPLAY = "replay"
    STALE = "stale"
    UNKNOWN_KEY = "unknown_key"
    MALFORMED = "malformed"
    OVERSIZE = "oversize"
    BAD_SEAL = "bad_seal"  # a sealed body that does not open, or a plain one on a sealed subject
    ALL = (BAD_SIGNATURE, REPLAY, STALE, UNKNOWN_KEY, MALFORMED, OVERSIZE, BAD_SEAL)


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
    max_containers: int = 1 << 17
    """Lists and maps in one body (inflated, batch included), checked before decoding:
    each costs a receiver an allocation the garbage collector tracks. One per 8 bytes of
    a full frame; real bodies carry their containers in far more bytes (the cost:
    docs/PROTOCOL.md, "Receiving: the order of checks", step 7)."""


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
decode_head = decode_envelope
"""The same decoder, given the envelope's first ten fields followed by nil (c0): the fixed
fields type-checked, the body left for after the MAC."""
_decode_value = msgspec.msgpack.Decoder(ext_hook=_no_ext).decode

# Bytes a scalar takes after its type byte: fixed, or the size of a length that follows.
_FIXED = {0xC0: 0, 0xC2: 0, 0xC3: 0, 0xCA: 4, 0xCB: 8, 0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}
_FIXED.update({0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8})
_SIZED = {0xC4: 1, 0xC5: 2, 0xC6: 4, 0xD9: 1, 0xDA: 2, 0xDB: 4}  # bin8..32, str8..32
_MAP_SIZE = {0xDE: 2, 0xDF: 4}
_STR_HEAD = {0xD9: 2, 0xDA: 3, 0xDB: 5}  # str8..32: type byte and length
_ELEVEN = (b"\x9b", b"\xdc\x00\x0b", b"\xdd\x00\x00\x00\x0b")


def _scalar_end(buf: bytes, pos: int) -> int:
    """Where the scalar (int, float, nil, bool, str, bin) at `pos` ends; -1 if there is
    none (a container, an extension, a reserved byte, or too few bytes)."""
    if pos >= len(buf):
        return -1
    b = buf[pos]
    if b < 0x80 or b >= 0xE0:  # fixints
        return pos + 1
    if 0xA0 <= b < 0xC0:  # fixstr
        end = pos + 1 + (b & 0x1F)
    elif b in _FIXED:
        end = pos + 1 + _FIXED[b]
    elif b in _SIZED:
        width = _SIZED[b]
        end = pos + 1 + width + int.from_bytes(buf[pos + 1 : pos + 1 + width], "big")
        if pos + 1 + width > len(buf):
            return -1
    else:
        return -1
    return end if end <= len(buf) else -1


def body_start(signed: bytes) -> tuple[int, int]:
    """Where the body (the 11th field) of the envelope bytes `signed` starts, found by
    skipping the ten fixed fields without decoding anything (an array of exactly 11, nine
    scalars, a map of at most MAX_HEADERS scalar pairs), and the UTF-8 bytes of the header
    strings. Its work is bounded by the fields, whatever the body holds. Raises
    FrameRejected(malformed)."""
    for pos, head in ((1, _ELEVEN[0]), (3, _ELEVEN[1]), (5, _ELEVEN[2])):
        if signed[:pos] == head:
            break
    else:
        raise FrameRejected(Reason.MALFORMED, "envelope must be an array of 11 fields")
    for _ in range(9):
        pos = _scalar_end(signed, pos)
        if pos < 0:
            raise FrameRejected(Reason.MALFORMED, "bad envelope: fields 1-9 must be scalars")
    kind = signed[pos] if pos < len(signed) else 0
    if 0x80 <= kind < 0x90:
        count, pos = kind & 0x0F, pos + 1
    elif kind in _MAP_SIZE:
        width = _MAP_SIZE[kind]
        count = int.from_bytes(signed[pos + 1 : pos + 1 + width], "big")
        pos += 1 + width
    else:
        raise FrameRejected(Reason.MALFORMED, "bad envelope: headers must be a map")
    if count > MAX_HEADERS:
        raise FrameRejected(Reason.MALFORMED, f"more than {MAX_HEADERS} headers")
    size = 0
    for _ in range(2 * count):
        start, pos = pos, _scalar_end(signed, pos)
        if pos < 0:
            raise FrameRejected(Reason.MALFORMED, "bad envelope: headers must map str to str")
        kind = signed[start]
        size += pos - start - (1 if 0xA0 <= kind < 0xC0 else _STR_HEAD.get(kind, 1))
    if pos >= len(signed):
        raise FrameRejected(Reason.MALFORMED, "bad envelope: no body")
    return pos, size


_GC_PAUSE_BYTES = 4096  # smaller bodies hold too few lists for the collector to matter
_CONTAINER = {0xDC: (2, 1), 0xDD: (4, 1), 0xDE: (2, 2), 0xDF: (4, 2)}  # (width, per entry)


def py_scan_value(buf: bytes, at: int, max_depth: int, max_containers: int) -> str | None:
    """Check, without decoding, that `buf[at:]` is exactly one msgpack value with no
    extension type or reserved byte, lists and maps nested at most `max_depth` deep and
    at most `max_containers` of them: None if so, else what is wrong. The compiled
    `scan_value` gives the same answers (tests compare them), in about 1 ms per MiB."""
    n, pos, containers = len(buf), at, 0
    pending = [1]  # values still to read in each open list or map, outermost first
    while pending:
        if not pending[-1]:
            pending.pop()
            continue
        pending[-1] -= 1
        b = buf[pos] if pos < n else 0xC1
        if 0x80 <= b < 0xA0:
            count, pos = (b & 0x0F) * (2 if b < 0x90 else 1), pos + 1
        elif b in _CONTAINER:
            width, per = _CONTAINER[b]
            if pos + 1 + width > n:
                return "truncated body"
            count = int.from_bytes(buf[pos + 1 : pos + 1 + width], "big") * per
            pos += 1 + width
        else:
            pos = _scalar_end(buf, pos)
            if pos < 0:
                return "body holds an extension type, a reserved byte or too few bytes"
            continue
        containers += 1
        if containers > max_containers:
            return f"body holds more than {max_containers} lists and maps"
        if len(pending) > max_depth:
            return f"body nested deeper than {max_depth}"
        pending.append(count)
    return None if pos == n else "bytes after the body"


scan_value: Any = compiled("scan_value") or py_scan_value


def body_limits(flags: int, limits: FrameLimits) -> tuple[int, int]:
    """The (depth, containers) a body under `flags` may have: a batch adds its levels."""
    return limits.max_depth + (BATCH_DEPTH if flags & FLAG_BATCH else 0), limits.max_containers


def decode_body(signed: bytes, at: int, flags: int, limits: FrameLimits) -> Any:
    """The body starting at `at`, checked by `scan_value` and then decoded: run only once
    the MAC has verified, so a stranger never makes a receiver decode anything, and even a
    key holder cannot make it build more than `max_containers` lists and maps.
    FrameRejected(malformed) names the fault."""
    fault = scan_value(signed, at, *body_limits(flags, limits))
    if fault is not None:
        raise FrameRejected(Reason.MALFORMED, fault)
    # The collector would walk every list already built each time it ran during a large
    # decode (three times the cost at the container bound): pause it, as the C path does.
    paused = len(signed) - at > _GC_PAUSE_BYTES and gc.isenabled()
    if paused:
        gc.disable()
    try:
        return _decode_value(memoryview(signed)[at:])
    except Exception as exc:  # invalid UTF-8, a list as a map key, ...
        raise FrameRejected(Reason.MALFORMED, f"bad body: {exc}") from None
    finally:
        if paused:
            gc.enable()


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


def unpack_envelope(frame: bytes, limits: FrameLimits) -> tuple[Envelope, bytes, bytes, int]:
    """The fixed fields of a frame, type-checked, as (envelope with body None, signed
    bytes, tag, where the body starts); `decode_body` decodes the body once the MAC has
    verified. Raises FrameRejected(oversize|malformed) only. Nothing here is authenticated
    yet, so nothing here decodes the body: its cost is bounded by the fixed fields."""
    size = len(frame)
    if size > limits.max_frame_bytes:
        raise FrameRejected(Reason.OVERSIZE, f"{size} bytes > {limits.max_frame_bytes}")
    if size <= MAC_SIZE:
        raise FrameRejected(Reason.MALFORMED, "truncated frame")
    signed = frame[:-MAC_SIZE]
    at, header_bytes = body_start(signed)
    try:
        env = decode_head(signed[:at] + b"\xc0")
    except Exception as exc:  # ValidationError, DecodeError, ...: all garbage
        raise FrameRejected(Reason.MALFORMED, f"bad envelope: {exc}") from None
    if header_bytes > limits.max_header_bytes:  # UTF-8 bytes of names and values
        raise FrameRejected(Reason.MALFORMED, "headers too large")
    return env, signed, frame[-MAC_SIZE:], at
