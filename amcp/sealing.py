"""Sealed bodies: the body of a frame on a sealed subject is encrypted with AES-256-GCM
(docs/PROTOCOL.md, "Sealed body"), then the frame is MACed as any other (encrypt then MAC).

    key   = HKDF-SHA256(ikm = keyring key, salt = none, info = "amcp1 seal" ||
                        u16be(len(sender)) || sender || u64be(epoch), length 32)
    nonce = u96be(seq)                       (the frame's seq, 12 bytes big-endian)
    aad   = "amcp1" || u16be(len(subject)) || subject || envelope bytes before the body
    body  = bin(AES-256-GCM(key, nonce, msgpack(body), aad))   (ciphertext || 16-byte tag)

One key per (keyring key, sender, epoch) and the seq as nonce: a sender never numbers two
frames alike within an epoch, so no (key, nonce) pair repeats; 12 bytes could not carry
sender, epoch and seq injectively, and a hash of them would only make a repeat unlikely.
Pure: no I/O; the Sealer and Opener (amcp.protocol) call it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from amcp.envelope import Reason
from amcp.errors import ConfigError, FrameRejected
from amcp.signing import mac_prefix
from amcp.subjects import validate_subject

__all__ = [
    "SEAL_ENV",
    "SEAL_LABEL",
    "SealKeys",
    "SealPolicy",
    "associated_data",
    "seal_key",
    "seal_nonce",
    "seal_patterns_from_env",
]

SEAL_LABEL = b"amcp1 seal"
"""HKDF info prefix: the MAC uses the keyring key as it is, so the two never coincide."""
SEAL_ENV = "AMCP_SEAL"
TAG_SIZE = 16
_CACHE_LIMIT = 4096  # derived keys kept: one per (key, sender, epoch), like the replay guard


def seal_key(secret: bytes, sender: str, epoch: int) -> bytes:
    """The AES-256 key of one sender epoch under one keyring key."""
    name = sender.encode()
    info = SEAL_LABEL + len(name).to_bytes(2, "big") + name + epoch.to_bytes(8, "big")
    return HKDF(algorithm=SHA256(), length=32, salt=None, info=info).derive(secret)


def seal_nonce(seq: int) -> bytes:
    """The GCM nonce of the frame numbered `seq` (a batch: the frame's own seq)."""
    return seq.to_bytes(12, "big")


def associated_data(subject: str, head: bytes) -> bytes:
    """What GCM authenticates beside the body: the MAC's subject prefix and the envelope
    bytes before the body (version, flags, msg_id, sender, epoch, seq, ts_ms, kid, kind,
    headers), so a sealed body cannot be moved to another frame or subject."""
    return _subject_prefix(subject) + head


_subject_prefix = lru_cache(maxsize=_CACHE_LIMIT)(mac_prefix)  # per frame: worth keeping


class SealKeys:
    """AES-GCM states by (keyring key, sender, epoch): one HKDF per sender epoch, bounded."""

    def __init__(self) -> None:
        self._ciphers: dict[tuple[bytes, str, int], AESGCM] = {}

    def _cipher(self, secret: bytes, sender: str, epoch: int) -> AESGCM:
        slot = (secret, sender, epoch)
        cipher = self._ciphers.get(slot)
        if cipher is None:
            if len(self._ciphers) >= _CACHE_LIMIT:
                self._ciphers.clear()
            cipher = self._ciphers[slot] = AESGCM(seal_key(secret, sender, epoch))
        return cipher

    def encrypt(
        self, secret: bytes, sender: str, epoch: int, seq: int, aad: bytes, plain: bytes
    ) -> bytes:
        return self._cipher(secret, sender, epoch).encrypt(seal_nonce(seq), plain, aad)

    def decrypt(
        self, secret: bytes, sender: str, epoch: int, seq: int, aad: bytes, sealed: bytes
    ) -> bytes:
        """The plaintext, or FrameRejected(bad_seal): a body sealed under another key,
        nonce or associated data than this frame's."""
        try:
            return self._cipher(secret, sender, epoch).decrypt(seal_nonce(seq), sealed, aad)
        except InvalidTag:
            detail = f"{sender} seq {seq}: the body does not decrypt"
            raise FrameRejected(Reason.BAD_SEAL, detail) from None


class SealPolicy:
    """Which subjects are sealed: NATS patterns (`*` one token, `>` the rest). A sender
    seals what matches; a receiver refuses a plain frame on a matching subject."""

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        self.patterns = tuple(validate_subject(p, wildcards=True) for p in patterns)
        self._split = [p.split(".") for p in self.patterns]
        self._seen: dict[str, bool] = {}

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def __call__(self, subject: str) -> bool:
        hit = self._seen.get(subject)
        if hit is None:
            tokens = subject.split(".")
            hit = any(_matches(p, tokens) for p in self._split)
            if len(self._seen) >= _CACHE_LIMIT:
                self._seen.clear()
            self._seen[subject] = hit
        return hit


def _matches(pattern: list[str], tokens: list[str]) -> bool:
    for i, want in enumerate(pattern):
        if want == ">":
            return len(tokens) > i
        if i >= len(tokens) or (want != "*" and want != tokens[i]):
            return False
    return len(tokens) == len(pattern)


def seal_patterns_from_env(flags: Iterable[str] | None = None) -> tuple[str, ...]:
    """`--seal` values if any, else $AMCP_SEAL split on commas; ConfigError if one is not a
    valid subject pattern."""
    given = list(flags or ())
    if not given:
        given = [p.strip() for p in os.environ.get(SEAL_ENV, "").split(",") if p.strip()]
    try:
        return SealPolicy(given).patterns
    except ConfigError as exc:
        raise ConfigError(f"--seal/${SEAL_ENV}: {exc}") from None
