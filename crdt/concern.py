"""Write and read concerns, as Akka Distributed Data has them: how many replicas must hold
a write before it is reported done, or must answer before a read returns.

The replicas counted are the *members*: the durable replicas registered in the replicated
state (see docs/CRDT.md). A member that crashed still counts, so a minority of live
members can never satisfy `majority`. Pure: the replicator counts, this module decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from crdt.errors import CrdtValueError

__all__ = ["LEVELS", "Level", "WriteResult", "check_level", "needed"]

Level = Literal["local", "one", "majority", "all"]
LEVELS: tuple[Level, ...] = ("local", "one", "majority", "all")


def check_level(level: object) -> Level:
    """`level` itself if it names a concern, else CrdtValueError."""
    if level not in LEVELS:
        raise CrdtValueError(f"concern must be one of {', '.join(LEVELS)}, not {level!r}")
    return level  # type: ignore[return-value]


def needed(level: Level, members: int) -> int:
    """How many acknowledgements `level` needs among `members` durable replicas.

    `local` needs the local replica only. The others count members and need at least one:
    with no member known, `one`, `majority` and `all` cannot be met.
    """
    if level == "local" or level == "one":
        return 1
    if level == "majority":
        return members // 2 + 1
    return max(members, 1)


@dataclass(frozen=True, slots=True)
class WriteResult:
    """A write reached its concern: `acks` replicas hold it, `needed` were required."""

    acks: int
    needed: int
