"""Memory retention of the per-subject HMAC states: reply inboxes, one subject per
request, must not pile up in the cache (they were the steady memory rise of the agents
that answer most requests, the S5s, in bench/bench_soak.py)."""

from __future__ import annotations

import hmac
import uuid

import pytest

from amcp.signing import MacKey, PyHmacSha256, mac_prefix

SECRET = b"k" * 32


def _expected(subject: str, data: bytes) -> bytes:
    return hmac.digest(SECRET, mac_prefix(subject) + data, "sha256")


@pytest.mark.parametrize("backend", [None, PyHmacSha256], ids=["default", "python"])
def test_reply_inboxes_are_signed_and_verified_but_not_cached(backend: object) -> None:
    key = MacKey(SECRET, backend=backend)
    for n in range(2000):
        subject = f"_INBOX.{uuid.uuid4().hex}.{n}"
        tag = key.sign(subject, b"body")
        assert tag == _expected(subject, b"body")
        assert key.verify(subject, b"body", tag)
        assert not key.verify(subject, b"other", tag)
    assert len(key._per_subject) == 0


def test_other_subjects_stay_cached_up_to_the_limit() -> None:
    key = MacKey(SECRET)
    key.sign("amcp.c.ctx.delta", b"x")
    assert "amcp.c.ctx.delta" in key._per_subject
    for n in range(10_000):
        assert key.sign(f"amcp.c.s{n}", b"x") == _expected(f"amcp.c.s{n}", b"x")
    assert 0 < len(key._per_subject) <= 4096
