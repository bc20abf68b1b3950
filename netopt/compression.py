"""zlib payload compression that pays its way, and decompression that cannot be bombed.

Only zlib: neither zstandard nor lz4 is a dependency (docs/NETOPT.md has the numbers).
"""

from __future__ import annotations

import zlib

from netopt.errors import DecompressionError

__all__ = ["compress_if_smaller", "decompress_bounded"]


def compress_if_smaller(data: bytes, threshold: int = 1024, level: int = 1) -> tuple[bytes, bool]:
    """`(compressed, True)` if `data` is at least `threshold` bytes and zlib shrinks it,
    else `(data, False)`. Level 1 is the fast end: on a bus, latency beats ratio."""
    if len(data) < threshold:
        return data, False
    compressed = zlib.compress(data, level)
    if len(compressed) < len(data):
        return compressed, True
    return data, False


def decompress_bounded(data: bytes, max_size: int, max_ratio: float) -> bytes:
    """Inflate a zlib stream, refusing it once the output would pass `max_size` bytes or
    `max_ratio` times the input size.

    The output is produced with zlib's `max_length`, so a decompression bomb is inflated to
    one byte past the limit and refused: memory stays a small multiple of the limit (zlib
    joins its output blocks once), never the bomb's full size.
    Raises DecompressionError with reason "oversize" or "malformed" (corrupt, truncated or
    followed by trailing bytes).
    """
    limit = min(max_size, int(len(data) * max_ratio))
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise DecompressionError("malformed", str(exc)) from None
    if len(out) > limit:
        raise DecompressionError(
            "oversize",
            f"inflates past {limit} bytes (max_size {max_size}, max_ratio {max_ratio} "
            f"of {len(data)} compressed bytes)",
        )
    if not inflater.eof:
        raise DecompressionError("malformed", "truncated zlib stream")
    if inflater.unused_data:
        raise DecompressionError("malformed", f"{len(inflater.unused_data)} bytes after stream")
    return out
