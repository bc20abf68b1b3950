"""agents.runtime.memory: freed heap memory goes back to the OS (glibc), as the soak needs."""

from __future__ import annotations

import platform

from agents.runtime.memory import can_release, release_free_memory


def _heap_rss_kib() -> int:
    with open("/proc/self/smaps") as f:
        lines = f.read().splitlines()
    total, in_heap = 0, False
    for line in lines:
        if "-" in line.split(" ", 1)[0] and not line.startswith(("Rss", "Size")):
            in_heap = line.endswith("[heap]")
        elif in_heap and line.startswith("Rss:"):
            total += int(line.split()[1])
    return total


def test_trim_returns_freed_heap_pages_to_the_os():
    assert platform.libc_ver()[0] == "glibc"  # the platform CI and the images run on
    assert can_release()
    release_free_memory()
    # 1 KiB objects are malloc'd (pymalloc takes 512 B and less); keeping every 16th leaves
    # the freed ones as holes between live chunks, which no top-of-heap shrink can return.
    blocks = [bytes(1024) + bytes([i % 256]) for i in range(40_000)]
    kept = blocks[::16]
    del blocks
    before = _heap_rss_kib()
    assert release_free_memory() is True
    after = _heap_rss_kib()
    assert after < before - 8 * 1024, (before, after)  # most of the ~37 MiB freed comes back
    assert len(kept) == 2500
