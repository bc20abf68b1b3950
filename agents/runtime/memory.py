"""Give freed heap memory back to the OS now and then (glibc's `malloc_trim`).

A long-running agent churns through small allocations (frames in, replies out). glibc keeps
freed chunks inside its main heap, so the heap's resident size creeps up while the bytes in
use stay flat. `malloc_trim` returns free pages inside the heap to the OS (madvise), so the
agent's RSS follows what it really uses. Without glibc (musl, macOS) there is no
`malloc_trim` and this does nothing. What the soak measured: docs/AGENTS.md, "Memory".
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

__all__ = ["TRIM_INTERVAL", "can_release", "release_free_memory"]

TRIM_INTERVAL = 60.0  # seconds; a trim walks the heap's free chunks: ~1 ms for ~10 MiB


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the libc this process already runs on
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


_TRIM = _malloc_trim()


def can_release() -> bool:
    """Whether this platform's allocator can give free heap memory back."""
    return _TRIM is not None


def release_free_memory() -> bool:
    """Return the heap's free pages to the OS; True if any were released."""
    return _TRIM is not None and bool(_TRIM(0))
