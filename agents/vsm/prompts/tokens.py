"""Counting a prompt's tokens: a pluggable counter and the byte-based default.

A real tokenizer is vendor-specific, and amcp depends on no vendor, so the default is an
estimate: one token per 4 bytes of UTF-8, rounded up (English text averages about 4 bytes
a token for the common BPE tokenizers; code and other scripts use more tokens a byte, so
register a real one for a tight budget). Any `str -> int` callable is a counter, and one
registered under the `amcp.token_counters` entry-point group is chosen by name
(`--token-counter NAME`; every agent rendering a task's prompts must have it); a
counter should be subadditive (two texts together cost no more than apart), as the
estimate is, since the context is budgeted entry by entry.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from importlib.metadata import entry_points

from amcp.errors import ConfigError

__all__ = [
    "BYTES_PER_TOKEN",
    "COUNTER_GROUP",
    "TokenCounter",
    "estimate_tokens",
    "load_counter",
    "trim_to_tokens",
]

BYTES_PER_TOKEN = 4
COUNTER_GROUP = "amcp.token_counters"  # name -> a `str -> int` callable; "bytes" is ours

TokenCounter = Callable[[str], int]


def estimate_tokens(text: str) -> int:
    """ceil(UTF-8 bytes / 4): the default counter."""
    return -(-len(text.encode()) // BYTES_PER_TOKEN)


def trim_to_tokens(text: str, limit: int, count: TokenCounter = estimate_tokens) -> str:
    """The longest prefix of `text` (cut at a character) that costs at most `limit`
    tokens, with an ellipsis when it was cut (the counter is taken as monotonic)."""
    if count(text) <= limit:
        return text
    lo, hi = 0, len(text)  # text[:lo] + "…" fits (or lo is 0); text[:hi] + "…" does not
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count(text[:mid] + "…") <= limit:
            lo = mid
        else:
            hi = mid - 1
    cut = text[:lo] + "…"
    return cut if lo and count(cut) <= limit else ""


@functools.cache
def load_counter(name: str) -> TokenCounter:
    """The counter registered as `name` (`bytes`: the estimate); ConfigError names the
    known ones."""
    if name == "bytes":
        return estimate_tokens
    found = [ep for ep in entry_points(group=COUNTER_GROUP) if ep.name == name]
    target = found[0].load() if found else None
    if not callable(target):
        known = sorted({"bytes", *(ep.name for ep in entry_points(group=COUNTER_GROUP))})
        raise ConfigError(
            f"no token counter {name!r} in the {COUNTER_GROUP} entry points; known: "
            + ", ".join(known)
        )
    return target
