"""HMAC-SHA256 of frames, domain-separated and bound to the subject.

An HMAC state keeps the SHA-256 states of the key's inner and outer pads (RFC 2104), and
`MacKey` keeps the inner state after each subject's prefix, so a tag costs two state
copies instead of a fresh HMAC set-up: the same bytes as `hmac.digest`. The states come
from the compiled `amcp._speedups` when it was built (a quarter of the cost per frame),
else from hashlib; `BACKEND` says which. Both produce the same bytes (tests check both).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from amcp.errors import EncodeError
from amcp.speedups import compiled
from amcp.subjects import validate_subject

__all__ = ["BACKEND", "MacKey", "PyHmacSha256", "mac_prefix"]

_BLOCK = 64  # SHA-256 block size in bytes
_CACHE_LIMIT = 4096  # distinct subjects kept per key: keep caches bounded
_ONE_OFF = "_INBOX."  # reply subjects: one request each, never worth a cache entry


def mac_prefix(subject: str) -> bytes:
    """The domain-separated subject prefix of the MAC input."""
    raw = subject.encode()
    if len(raw) > 0xFFFF:
        raise EncodeError(f"subject too long ({len(raw)} bytes)")
    return b"amcp1" + len(raw).to_bytes(2, "big") + raw


class PyHmacSha256:
    """HMAC-SHA256 from hashlib pad states: the fallback for `amcp._speedups.HmacSha256`,
    with the same interface (`bind`, `sign`, `append_tag`, `verify`)."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, secret: bytes) -> None:
        if len(secret) > _BLOCK:
            secret = hashlib.sha256(secret).digest()
        padded = secret.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded))

    def bind(self, prefix: bytes) -> PyHmacSha256:
        """A state whose input starts with `prefix`."""
        bound = PyHmacSha256.__new__(PyHmacSha256)  # no pads to derive: copy the states
        bound._inner = self._inner.copy()
        bound._inner.update(prefix)
        bound._outer = self._outer
        return bound

    def sign(self, data: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(data)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def append_tag(self, data: bytes) -> bytes:
        """`data` followed by its tag: a signed frame."""
        return data + self.sign(data)

    def verify(self, data: bytes, tag: bytes) -> bool:
        """Constant-time check of `tag`."""
        return hmac.compare_digest(self.sign(data), tag)


HmacSha256: Any = compiled("HmacSha256") or PyHmacSha256
BACKEND = "c" if HmacSha256 is not PyHmacSha256 else "python"
"""Which HMAC implementation signs and verifies in this process: "c" or "python"."""


class MacKey:
    """One key's HMAC state, and its state bound to each subject seen (bounded cache)."""

    __slots__ = ("_hmac", "_per_subject")

    def __init__(self, secret: bytes, *, backend: Any = None) -> None:
        self._hmac = (backend or HmacSha256)(secret)
        self._per_subject: dict[str, Any] = {}

    def _subject_state(self, subject: str) -> Any:
        """The state after the subject prefix. Subjects are validated here, once each
        (no whitespace or CR/LF can reach the NATS protocol line), so the bus can tell
        nats-py to skip its per-message subject regex; reply inboxes each time, uncached."""
        validate_subject(subject, wildcards=False)
        state = self._hmac.bind(mac_prefix(subject))
        if subject.startswith(_ONE_OFF):  # cached, each would stay until the cache is full
            return state
        if len(self._per_subject) >= _CACHE_LIMIT:
            self._per_subject.clear()
        self._per_subject[subject] = state
        return state

    def digest(self, *parts: bytes) -> bytes:
        """HMAC-SHA256 of the concatenation of `parts` (no subject binding)."""
        return self._hmac.sign(b"".join(parts))

    def sign(self, subject: str, envelope_bytes: bytes) -> bytes:
        """The tag of an envelope as published on `subject`."""
        return (self._per_subject.get(subject) or self._subject_state(subject)).sign(envelope_bytes)

    def seal(self, subject: str, envelope_bytes: bytes) -> bytes:
        """The frame: the envelope followed by its tag as published on `subject`."""
        return (self._per_subject.get(subject) or self._subject_state(subject)).append_tag(
            envelope_bytes
        )

    def verify(self, subject: str, envelope_bytes: bytes, tag: bytes) -> bool:
        """Constant-time check of a tag; runs per message received."""
        return (self._per_subject.get(subject) or self._subject_state(subject)).verify(
            envelope_bytes, tag
        )
