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
Pure: no I/O; the Sealer and Opener (amcp.protocol) call it. AES-GCM runs in the compiled
`amcp._speedups.AesGcm` when it was built (it keeps the key schedule and lets the compiled
seal and open encrypt in place), else in `PyAesGcm` around cryptography's AESGCM;
`CIPHER_BACKEND` says which. Both give the same bytes (tests check both).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from amcp.envelope import Reason
from amcp.errors import ConfigError, FrameRejected
from amcp.signing import mac_prefix
from amcp.speedups import compiled
from amcp.subjects import validate_subject

if TYPE_CHECKING:
    from amcp.keyring import Key

__all__ = [
    "CIPHER_BACKEND",
    "SEAL_ENV",
    "SEAL_LABEL",
    "PyAesGcm",
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
NONCE_SIZE = 12
_CACHE_LIMIT = 4096  # derived keys kept: one per (key, sender, epoch), like the replay guard


def seal_key(secret: bytes, sender: str, epoch: int) -> bytes:
    """The AES-256 key of one sender epoch under one keyring key."""
    name = sender.encode()
    info = SEAL_LABEL + len(name).to_bytes(2, "big") + name + epoch.to_bytes(8, "big")
    return HKDF(algorithm=SHA256(), length=32, salt=None, info=info).derive(secret)


def seal_nonce(seq: int) -> bytes:
    """The GCM nonce of the frame numbered `seq` (a batch: the frame's own seq)."""
    return seq.to_bytes(NONCE_SIZE, "big")


def associated_data(subject: str, head: bytes) -> bytes:
    """What GCM authenticates beside the body: the MAC's subject prefix and the envelope
    bytes before the body (version, flags, msg_id, sender, epoch, seq, ts_ms, kid, kind,
    headers), so a sealed body cannot be moved to another frame or subject."""
    return _subject_prefix(subject) + head


_subject_prefix = lru_cache(maxsize=_CACHE_LIMIT)(mac_prefix)  # per frame: worth keeping


class PyAesGcm:
    """AES-256-GCM from cryptography: the fallback for `amcp._speedups.AesGcm`, with the
    same interface (`decrypt` answers None, not an exception, for what does not open)."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes) -> bytes:
        _check_nonce(nonce)
        return self._aead.encrypt(nonce, data, associated_data)

    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes) -> bytes | None:
        _check_nonce(nonce)
        try:
            return self._aead.decrypt(nonce, data, associated_data)
        except InvalidTag:
            return None


def _check_nonce(nonce: bytes) -> None:
    if len(nonce) != NONCE_SIZE:  # AESGCM takes 8 to 128 bytes; the spec, and the C twin, 12
        raise ValueError(f"the nonce is {NONCE_SIZE} bytes")


AesGcm: Any = compiled("AesGcm") or PyAesGcm
CIPHER_BACKEND = "c" if AesGcm is not PyAesGcm else "python"
"""Which AES-GCM implementation seals and opens in this process: "c" or "python"."""


class SealKeys:
    """AES-GCM states by (keyring key, sender, epoch): one HKDF per sender epoch, bounded.

    `ciphers` is keyed by the key's `MacKey` (one per `Key`, the object the keyring's verify
    view and the compiled seal and open hold), the sender and the epoch; the compiled paths
    read it and leave a miss to `encrypt` and `decrypt`, which fill it."""

    __slots__ = ("_backend", "ciphers")

    def __init__(self, *, backend: Any = None) -> None:
        self._backend = backend or AesGcm
        self.ciphers: dict[tuple[Any, str, int], Any] = {}

    def cipher(self, key: Key, sender: str, epoch: int) -> Any:
        slot = (key.mac, sender, epoch)
        cipher = self.ciphers.get(slot)
        if cipher is None:
            if len(self.ciphers) >= _CACHE_LIMIT:
                self.ciphers.clear()  # cleared, never replaced: the compiled paths hold it
            cipher = self.ciphers[slot] = self._backend(seal_key(key.secret, sender, epoch))
        return cipher

    def encrypt(
        self, key: Key, sender: str, epoch: int, seq: int, aad: bytes, plain: bytes
    ) -> bytes:
        return self.cipher(key, sender, epoch).encrypt(seal_nonce(seq), plain, aad)

    def decrypt(
        self, key: Key, sender: str, epoch: int, seq: int, aad: bytes, sealed: bytes
    ) -> bytes:
        """The plaintext, or FrameRejected(bad_seal): a body sealed under another key,
        nonce or associated data than this frame's."""
        plain = self.cipher(key, sender, epoch).decrypt(seal_nonce(seq), sealed, aad)
        if plain is None:
            raise FrameRejected(Reason.BAD_SEAL, f"{sender} seq {seq}: the body does not decrypt")
        return plain


class SealPolicy:
    """Which subjects are sealed: NATS patterns (`*` one token, `>` the rest). A sender
    seals what matches; a receiver refuses a plain frame on a matching subject."""

    __slots__ = ("_split", "decided", "patterns")

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        self.patterns = tuple(validate_subject(p, wildcards=True) for p in patterns)
        self._split = [p.split(".") for p in self.patterns]
        # Subject -> sealed, for the subjects asked about so far: the compiled seal and
        # open read it and leave a subject not in it to `__call__`.
        self.decided: dict[str, bool] = {}

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def __call__(self, subject: str) -> bool:
        hit = self.decided.get(subject)
        if hit is None:
            tokens = subject.split(".")
            hit = any(_matches(p, tokens) for p in self._split)
            if len(self.decided) >= _CACHE_LIMIT:
                self.decided.clear()  # cleared, never replaced: the compiled paths hold it
            self.decided[subject] = hit
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
