"""Sans-I/O protocol: `Sealer` turns messages into signed frames, `Opener` turns frames
back into verified envelopes. Neither touches a socket; the Bus wires them to NATS.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from amcp.envelope import (
    MAC_SIZE,
    VERSION,
    FrameLimits,
    Reason,
    pack_envelope,
    unpack_envelope,
)
from amcp.errors import EncodeError, FrameRejected
from amcp.keyring import Key, Keyring
from amcp.message import Message
from amcp.replay import ReplayGuard

__all__ = ["Opener", "RejectionStats", "Sealer"]

Clock = Callable[[], float]
_NO_HEADERS: dict[str, str] = {}  # shared, never mutated: saves a dict per message


class Sealer:
    """Signs outbound messages for one sender epoch, numbering them 1, 2, 3, ..."""

    def __init__(
        self,
        sender: str,
        keyring: Keyring,
        *,
        limits: FrameLimits | None = None,
        clock: Clock = time.time,
        epoch: int | None = None,
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

    def current_key(self, now: float) -> Key:
        """The signing key, re-chosen at most once a second (rotation, expiry)."""
        if now - self._key_checked >= 1.0:
            self._key = self.keyring.signing_key(now)
            self._key_checked = now
        return self._key

    def seal(
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
        if len(envelope) + MAC_SIZE > self.limits.max_frame_bytes:
            raise EncodeError(
                f"frame of {len(envelope) + MAC_SIZE} bytes exceeds the "
                f"{self.limits.max_frame_bytes}-byte limit"
            )
        return envelope + key.mac.sign(subject, envelope)


class RejectionStats:
    """Counts of rejected frames by reason, shared by every Opener of one bus."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter({reason: 0 for reason in Reason.ALL})

    def as_dict(self) -> dict[str, int]:
        return dict(self.counts)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class Opener:
    """Verifies inbound frames for one receiver (one subscription or inbox).

    Order follows RFC 4303: size and shape, key lookup, timestamp skew and replay window
    (cheap), then the MAC, and only then the window moves. `owner` is handed to each
    Message so it can reply (the Bus); the Opener itself never does I/O.
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
    ) -> None:
        self.keyring = keyring
        self.limits = limits or FrameLimits()
        self.guard = guard or ReplayGuard()
        self.stats = stats or RejectionStats()
        self.clock = clock
        self.owner = owner

    def open(self, subject: str, frame: bytes) -> Message:
        """The verified message, or FrameRejected (already counted in `stats`)."""
        try:
            env, signed, tag = unpack_envelope(frame, self.limits)
            now = self.clock()
            key = self.keyring.verify_key(env.kid, now)
            if key is None:
                raise FrameRejected(Reason.UNKNOWN_KEY, f"key {env.kid!r} unknown or expired")
            sender, epoch, seq, ts_ms = env.sender, env.epoch, env.seq, env.ts_ms
            reason = self.guard.check(sender, epoch, seq, ts_ms, int(now * 1000))
            if reason is not None:
                raise FrameRejected(reason, f"{sender} epoch {epoch} seq {seq}")
            if not key.verify(subject, signed, tag):
                raise FrameRejected(Reason.BAD_SIGNATURE, f"from {sender!r}")
        except FrameRejected as rejected:
            self.stats.counts[rejected.reason] += 1
            raise
        self.guard.commit(sender, epoch, seq, ts_ms)
        return Message(subject, env, self.owner)
