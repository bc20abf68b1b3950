"""HMAC-SHA256 signing of frames, domain-separated and bound to the subject."""

from __future__ import annotations

import hmac

from amcp.errors import EncodeError

__all__ = ["mac_prefix", "sign", "verify"]

_prefix_cache: dict[str, bytes] = {}


def mac_prefix(subject: str) -> bytes:
    """The domain-separated subject prefix of the MAC input (cached: subjects repeat)."""
    prefix = _prefix_cache.get(subject)
    if prefix is None:
        raw = subject.encode()
        if len(raw) > 0xFFFF:
            raise EncodeError(f"subject too long ({len(raw)} bytes)")
        prefix = b"amcp1" + len(raw).to_bytes(2, "big") + raw
        if len(_prefix_cache) > 4096:  # bounded: subjects may be per-request inboxes
            _prefix_cache.clear()
        _prefix_cache[subject] = prefix
    return prefix


def sign(key: bytes, subject: str, envelope_bytes: bytes) -> bytes:
    """HMAC-SHA256 tag of an envelope as published on `subject`."""
    return hmac.digest(key, mac_prefix(subject) + envelope_bytes, "sha256")


def verify(key: bytes, subject: str, envelope_bytes: bytes, tag: bytes) -> bool:
    """Constant-time check of a tag."""
    return hmac.compare_digest(sign(key, subject, envelope_bytes), tag)
