"""Sans-I/O protocol: `Sealer` turns messages into signed frames, `Opener` turns frames
back into verified envelopes. Neither touches a socket; the Bus wires them to NATS.

`Sealer._seal` and `Opener._open` are the reference. When the extension was built,
`seal` and `open` are the compiled `amcp._speedups.SealerCore.seal` and `OpenerCore.open`:
the same steps in C for the common message (no flags but a sealed body's, a compiled
ReplayGuard, a subject already bound and decided sealed or not, a cipher already derived),
handing everything else, and every rejection, to the reference; the differential tests
(tests/unit/amcp/test_*_differential.py, test_sealing.py) check that both give the same
frames, accept, reject and count alike, and leave the same replay windows.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from amcp.envelope import (
    FLAG_BATCH,
    FLAG_COMPRESSED,
    FLAG_SEALED,
    MAC_SIZE,
    VERSION,
    Envelope,
    FrameLimits,
    Reason,
    _decode_value,
    decode_body,
    decode_head,
    encode_envelope,
    pack_envelope,
    unpack_envelope,
)
from amcp.errors import EncodeError, FrameRejected
from amcp.framebody import (
    BATCH_KIND,
    Item,
    batch_body,
    check_batch,
    compress_body,
    encode_item,
    inflate_body,
)
from amcp.keyring import Key, Keyring
from amcp.message import Message
from amcp.replay import ReplayGuard
from amcp.sealing import TAG_SIZE, SealKeys, SealPolicy, associated_data
from amcp.signing import MacKey
from amcp.speedups import compiled

__all__ = ["Opener", "RejectionStats", "Sealer"]

Clock = Callable[[], float]
_NO_HEADERS: dict[str, str] = {}  # shared, never mutated: saves a dict per message
_BATCH_HEAD = encode_item(BATCH_KIND, None, None)[0]  # kind "batch", no headers
_ELEVEN = b"\x9b"  # msgpack fixarray header of the 11-field envelope


def _compiled_bases() -> tuple[Any, Any]:
    """The compiled bases of Sealer and Opener, bound to the envelope codec and the types
    their fast paths read and build; `object` for both if there are none (or the types'
    layout is not the one `bind` checks for)."""
    sealer, opener, bind = compiled("SealerCore"), compiled("OpenerCore"), compiled("bind")
    if sealer is None or opener is None or bind is None:
        return object, object
    try:
        bind(decode_head, encode_envelope, Envelope, Message, MacKey, _decode_value)
    except (TypeError, ValueError):
        return object, object
    return sealer, opener


_SealerBase, _OpenerBase = _compiled_bases()


class Sealer(_SealerBase):
    """Signs outbound messages for one sender epoch, numbering them 1, 2, 3, ...

    With `compress_threshold` set, a body (or batch body) of at least that many bytes is
    sent zlib-compressed when that makes the frame smaller (docs/PROTOCOL.md). On a
    subject `sealed` matches, the body (or batch body) is encrypted instead, never
    compressed: compressing before encrypting would leak the content through the length.
    """

    def __init__(
        self,
        sender: str,
        keyring: Keyring,
        *,
        limits: FrameLimits | None = None,
        clock: Clock = time.time,
        epoch: int | None = None,
        compress_threshold: int | None = None,
        sealed: SealPolicy | None = None,
        seal_keys: SealKeys | None = None,
    ) -> None:
        if not 0 < len(sender) <= 128:
            raise EncodeError("sender id must be 1 to 128 characters")
        self.sender = sender
        self.keyring = keyring
        self.limits = limits or FrameLimits()
        self.clock = clock
        # The epoch is the start time in microseconds: a restarted sender gets a larger one.
        self.epoch = int(clock() * 1_000_000) if epoch is None else epoch
        self.seq = 0
        self._id_prefix = os.urandom(8)
        self._key = keyring.signing_key(clock())
        self._key_checked = clock()
        self.compress_threshold = compress_threshold
        self._compress_at = sys.maxsize if compress_threshold is None else compress_threshold
        self.sealed = sealed or SealPolicy()
        self._seal_keys = seal_keys or SealKeys()
        # What the compiled seal reads: None when nothing is sealed, so plain senders pay
        # no lookup.
        self._sealed_subjects = self.sealed.decided if self.sealed else None
        self._seal_ciphers = self._seal_keys.ciphers

    def current_key(self, now: float) -> Key:
        """The signing key, re-chosen at most once a second (rotation, expiry)."""
        if now - self._key_checked >= 1.0:
            self._key = self.keyring.signing_key(now)
            self._key_checked = now
        return self._key

    def _seal(
        self,
        subject: str,
        body: Any,
        kind: str = "msg",
        headers: dict[str, str] | None = None,
        flags: int = 0,
        seq: int | None = None,
    ) -> bytes:
        """One signed frame for `subject`. Raises EncodeError if it cannot be sent."""
        now = self.clock()
        key = self._key if now - self._key_checked < 1.0 else self.current_key(now)
        if seq is None:
            self.seq = seq = self.seq + 1
        if self.sealed and self.sealed(subject):
            item = encode_item(kind, headers, body)
            return self._sealed_frame(subject, flags, seq, now, key, item)
        envelope = pack_envelope(
            [
                VERSION,
                flags,
                self._id_prefix + seq.to_bytes(8, "big"),
                self.sender,
                self.epoch,
                seq,
                int(now * 1000),
                key.kid,
                kind,
                headers or _NO_HEADERS,
                body,
            ]
        )
        self._check_size(len(envelope) + MAC_SIZE)
        if len(envelope) >= self._compress_at and not flags:
            head, raw = encode_item(kind, headers, body)
            field = compress_body(raw, self._compress_at, self.limits.max_inflate_ratio)
            if field is not None:
                envelope = self._prefix(FLAG_COMPRESSED, seq, now, key) + head + field
        return key.mac.seal(subject, envelope)

    seal = _seal if _SealerBase is object else _SealerBase.seal

    def _sealed_frame(
        self, subject: str, flags: int, seq: int, now: float, key: Key, item: Item
    ) -> bytes:
        """The frame numbered `seq` carrying `item` (packed kind and headers, packed body)
        with its body sealed. Raises EncodeError past the frame limit."""
        head = self._prefix(flags | FLAG_SEALED, seq, now, key) + item[0]
        aad = associated_data(subject, head)
        sealed = self._seal_keys.encrypt(key, self.sender, self.epoch, seq, aad, item[1])
        envelope = head + encode_envelope(sealed)
        self._check_size(len(envelope) + MAC_SIZE)
        return key.mac.seal(subject, envelope)

    def _check_size(self, size: int) -> None:
        if size > self.limits.max_frame_bytes:
            raise EncodeError(
                f"frame of {size} bytes exceeds the {self.limits.max_frame_bytes}-byte limit"
            )

    def seal_items(self, subject: str, items: Sequence[Item]) -> bytes:
        """One signed frame carrying messages encoded by `encode_item`: a plain frame for
        one, else a batch frame. A batch takes the next seq for itself and one for each
        inner message, so every message keeps its own place in the replay window.
        Raises EncodeError if the uncompressed frame would pass the frame limit."""
        now = self.clock()
        key = self._key if now - self._key_checked < 1.0 else self.current_key(now)
        seq = self.seq + 1
        if len(items) == 1:
            head, raw = items[0]
            flags = 0
        else:
            head, raw = _BATCH_HEAD, batch_body(seq + 1, items)
            flags = FLAG_BATCH
        prefix = self._prefix(flags, seq, now, key)
        sealed = self.sealed and self.sealed(subject)
        size = len(prefix) + len(head) + len(raw) + MAC_SIZE
        if sealed:  # the GCM tag, and a bin header (a sealed body is one bin)
            size += TAG_SIZE + _bin_header_size(len(raw) + TAG_SIZE)
        self._check_size(size)
        self.seq = seq + (len(items) if flags else 0)
        if sealed:
            return self._sealed_frame(subject, flags, seq, now, key, (head, raw))
        field = None
        if len(raw) >= self._compress_at:
            field = compress_body(raw, self._compress_at, self.limits.max_inflate_ratio)
        if field is None:
            envelope = prefix + head + raw
        else:
            envelope = self._prefix(flags | FLAG_COMPRESSED, seq, now, key) + head + field
        return key.mac.seal(subject, envelope)

    def _prefix(self, flags: int, seq: int, now: float, key: Key) -> bytes:
        """The envelope up to and without kind, headers and body."""
        fields = pack_envelope(
            [
                VERSION,
                flags,
                self._id_prefix + seq.to_bytes(8, "big"),
                self.sender,
                self.epoch,
                seq,
                int(now * 1000),
                key.kid,
            ]
        )
        return _ELEVEN + fields[1:]


def _bin_header_size(n: int) -> int:
    """Bytes of a msgpack bin header for `n` bytes (bin8, bin16, bin32)."""
    return 2 if n < 0x100 else 3 if n < 0x10000 else 5


IN_FLIGHT_MS = 5_000
"""A frame refused as stale that was stamped at most this long before its receiver started,
and arrived at most this long after it was stamped, was most likely in flight while the
receiver subscribed: still refused (nothing tells it from a replay), but logged quietly."""


class RejectionStats:
    """Counts of rejected frames by reason, shared by every Opener of one bus."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter({reason: 0 for reason in Reason.ALL})

    def as_dict(self) -> dict[str, int]:
        return dict(self.counts)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class Opener(_OpenerBase):
    """Verifies inbound frames for one receiver (one subscription or inbox).

    Order follows RFC 4303: size and shape, key lookup, timestamp skew and replay window
    (cheap), then the MAC, and only then the window moves. `owner` is handed to each
    Message so it can reply (the Bus); the Opener itself never does I/O.

    A sealed frame's body is decrypted after the MAC, whatever `sealed` says: any holder of
    the keyring can open it. `sealed` names the subjects on which a plain frame is refused
    (`bad_seal`), so a subject's sealing cannot be skipped by a sender.
    """

    def __init__(
        self,
        keyring: Keyring,
        *,
        limits: FrameLimits | None = None,
        guard: ReplayGuard | None = None,
        stats: RejectionStats | None = None,
        clock: Clock = time.time,
        owner: Any = None,
        sealed: SealPolicy | None = None,
        seal_keys: SealKeys | None = None,
    ) -> None:
        self.keyring = keyring
        self.limits = limits or FrameLimits()
        self.guard = ReplayGuard() if guard is None else guard  # an empty guard is falsy
        self.stats = stats or RejectionStats()
        self.clock = clock
        self.owner = owner
        self.sealed = sealed or SealPolicy()
        self._seal_keys = seal_keys or SealKeys()
        # What the compiled open reads (as the Sealer's).
        self._sealed_subjects = self.sealed.decided if self.sealed else None
        self._seal_ciphers = self._seal_keys.ciphers

    def _open(self, subject: str, frame: bytes) -> Message:
        """The verified message, or FrameRejected (already counted in `stats`)."""
        try:
            env, signed, tag, at = unpack_envelope(frame, self.limits)
            now = self.clock()
            key = self.keyring.verify_key(env.kid, now)
            if key is None:
                raise FrameRejected(Reason.UNKNOWN_KEY, f"key {env.kid!r} unknown or expired")
            sender, epoch, seq, ts_ms = env.sender, env.epoch, env.seq, env.ts_ms
            now_ms = int(now * 1000)
            reason = self.guard.check(sender, epoch, seq, ts_ms, now_ms)
            if reason is not None:
                raise FrameRejected(reason, f"{sender} epoch {epoch} seq {seq}")
            if not key.verify(subject, signed, tag):
                raise FrameRejected(Reason.BAD_SIGNATURE, f"from {sender!r}")
            if env.flags & FLAG_SEALED:  # only now: verified
                env.body = self._unseal(subject, env, signed, at)
            elif self.sealed and self.sealed(subject):  # a key holder skipping the sealing
                raise FrameRejected(
                    Reason.BAD_SEAL, f"plain frame from {sender!r} on a sealed subject"
                )
            else:
                env.body = decode_body(signed, at, env.flags, self.limits)
            if env.flags:  # decompress and shape-check only what the MAC vouched for
                self._decode_body(env)
        except FrameRejected as rejected:
            self.stats.counts[rejected.reason] += 1
            raise
        self.guard.commit(sender, epoch, seq, ts_ms, now_ms)
        return Message(subject, env, self.owner)

    open = _open if _OpenerBase is object else _OpenerBase.open

    def in_flight(self, rejected: FrameRejected, frame: bytes) -> bool:
        """Whether `frame`, refused with `rejected`, was most likely sent while this
        receiver was starting (IN_FLIGHT_MS) rather than replayed. The envelope is parsed
        again only within IN_FLIGHT_MS of the floor: after that no frame can be in flight
        from before it, and a flood of stale frames costs what it did."""
        if rejected.reason != Reason.STALE:
            return False
        floor = self.guard.evicted_floor_ms
        now_ms = int(self.clock() * 1000)
        if now_ms - floor >= IN_FLIGHT_MS:  # a frame stamped at or before the floor is late
            return False
        try:
            ts_ms = unpack_envelope(frame, self.limits)[0].ts_ms
        except FrameRejected:
            return False
        return floor - IN_FLIGHT_MS < ts_ms <= floor and now_ms - ts_ms < IN_FLIGHT_MS

    def _unseal(self, subject: str, env: Envelope, signed: bytes, at: int) -> Any:
        """The decoded body of a sealed frame whose MAC verified; FrameRejected(bad_seal)
        if it does not decrypt, (malformed) if it is not one bin or is compressed too."""
        if env.flags & FLAG_COMPRESSED:
            raise FrameRejected(Reason.MALFORMED, "a sealed body is never compressed")
        sealed = decode_body(signed, at, 0, self.limits)
        if type(sealed) is not bytes:
            raise FrameRejected(Reason.MALFORMED, "a sealed body is one bin")
        key = self.keyring.key(env.kid)
        if key is None:  # verify_key found it just before: only a reload in between
            raise FrameRejected(Reason.UNKNOWN_KEY, f"key {env.kid!r} unknown or expired")
        aad = associated_data(subject, signed[:at])
        plain = self._seal_keys.decrypt(key, env.sender, env.epoch, env.seq, aad, sealed)
        return decode_body(plain, 0, env.flags, self.limits)

    def _bad_signature(self, sender: str) -> None:
        """Count and raise what `_open` would for a frame whose MAC did not verify (the
        compiled `open` calls it rather than hash a frame twice)."""
        self.stats.counts[Reason.BAD_SIGNATURE] += 1
        raise FrameRejected(Reason.BAD_SIGNATURE, f"from {sender!r}")

    def _decode_body(self, env: Envelope) -> None:
        if env.flags & FLAG_COMPRESSED:
            env.body = inflate_body(env.body, env.flags, self.limits)
        if env.flags & FLAG_BATCH:
            if env.kind != BATCH_KIND or env.headers:  # what each inner message has its own of
                raise FrameRejected(Reason.MALFORMED, 'a batch frame has kind "batch", no headers')
            env.body = check_batch(env.body, self.limits)

    def split(self, batch: Message) -> tuple[list[Message], list[FrameRejected]]:
        """The inner messages of a batch `open` returned, in order, each checked against
        its sender's replay window: a replayed one is dropped and counted (`replay`) while
        the others go through. Also returns the rejections, for logging."""
        env = batch.env
        sender, epoch, ts_ms = env.sender, env.epoch, env.ts_ms
        inners = env.body
        seqs = [inner.seq for inner in inners]
        admitted = self.guard.admit(sender, epoch, seqs, ts_ms, int(self.clock() * 1000))
        version, kid, id_prefix = env.version, env.kid, env.msg_id[:8]
        subject, owner = batch.subject, self.owner
        out: list[Message] = []
        dropped: list[FrameRejected] = []
        for inner, ok in zip(inners, admitted, strict=True):
            seq = inner.seq
            if not ok:
                dropped.append(
                    FrameRejected(Reason.REPLAY, f"{sender} epoch {epoch} inner seq {seq}")
                )
                continue
            inner_env = Envelope(
                version,
                0,
                id_prefix + seq.to_bytes(8, "big"),
                sender,
                epoch,
                seq,
                ts_ms,
                kid,
                inner.kind,
                inner.headers,
                inner.body,
            )
            out.append(Message(subject, inner_env, owner))
        if dropped:
            self.stats.counts[Reason.REPLAY] += len(dropped)
        return out, dropped

    def open_all(self, subject: str, frame: bytes) -> list[Message]:
        """Every message a frame carries (one, or a batch's inner messages that passed the
        replay check); FrameRejected if the frame itself is refused."""
        msg = self.open(subject, frame)
        return self.split(msg)[0] if msg.env.flags & FLAG_BATCH else [msg]
