"""Compression that pays its way; decompression that refuses bombs with bounded memory."""

from __future__ import annotations

import os
import tracemalloc
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netopt import DecompressionError, NetoptError, compress_if_smaller, decompress_bounded

TEXT = b'{"role": "s1", "task": "summarise the logs", "status": "done"}\n' * 100


def test_compressible_payloads_are_compressed() -> None:
    data, compressed = compress_if_smaller(TEXT)
    assert compressed
    assert len(data) < len(TEXT)
    assert decompress_bounded(data, max_size=1 << 20, max_ratio=1000) == TEXT


def test_small_payloads_are_left_alone() -> None:
    assert compress_if_smaller(TEXT[:1023]) == (TEXT[:1023], False)
    assert compress_if_smaller(TEXT[:100], threshold=50)[1]


def test_incompressible_payloads_are_left_alone() -> None:
    noise = os.urandom(4096)
    assert compress_if_smaller(noise) == (noise, False)


@given(st.binary(max_size=5000), st.integers(0, 2000))
def test_round_trip(data: bytes, threshold: int) -> None:
    out, compressed = compress_if_smaller(data, threshold=threshold)
    if compressed:
        assert len(out) < len(data)
        assert decompress_bounded(out, max_size=len(data), max_ratio=len(data) / len(out)) == data
    else:
        assert out == data


def bomb(inflated_size: int) -> bytes:
    """A zlib stream of zeros, built without ever holding the inflated bytes."""
    deflater = zlib.compressobj(9)
    chunk = bytes(1 << 20)
    parts = [deflater.compress(chunk) for _ in range(inflated_size >> 20)]
    return b"".join([*parts, deflater.flush()])


def test_a_bomb_is_refused_without_being_inflated() -> None:
    payload = bomb(64 << 20)  # 64 MiB of zeros in about 64 KB
    limit = 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(DecompressionError) as refused:
            decompress_bounded(payload, max_size=limit, max_ratio=10_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert refused.value.reason == "oversize"
    assert isinstance(refused.value, NetoptError)
    # zlib joins its output blocks once (2x the limit) and keeps the unread input tail:
    # a few MiB at most, against the 64 MiB the bomb would inflate to.
    assert peak < 3 * limit + len(payload), f"peak {peak} bytes"


def test_the_ratio_limit_applies_below_the_size_limit() -> None:
    payload = zlib.compress(bytes(10_000))
    with pytest.raises(DecompressionError, match="oversize"):
        decompress_bounded(payload, max_size=1 << 20, max_ratio=10)


def test_the_size_limit_is_inclusive() -> None:
    payload = zlib.compress(TEXT)
    assert decompress_bounded(payload, max_size=len(TEXT), max_ratio=1e9) == TEXT
    with pytest.raises(DecompressionError, match="oversize"):
        decompress_bounded(payload, max_size=len(TEXT) - 1, max_ratio=1e9)


@pytest.mark.parametrize(
    "payload",
    [
        b"definitely not zlib",
        zlib.compress(TEXT)[:-10],  # truncated
        zlib.compress(TEXT) + b"trailing",
        b"",
    ],
    ids=["garbage", "truncated", "trailing", "empty"],
)
def test_malformed_payloads_are_refused(payload: bytes) -> None:
    with pytest.raises(DecompressionError) as refused:
        decompress_bounded(payload, max_size=1 << 20, max_ratio=1000)
    assert refused.value.reason == "malformed"
