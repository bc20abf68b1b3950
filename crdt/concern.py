"""Write and read concerns, as Akka Distributed Data has them: how many replicas must hold
a write before it is reported done, or must answer before a read returns.

The replicas counted are the *members*: the durable replicas registered in the replicated
state (see docs/CRDT.md). A member that crashed still counts, so a minority of live
members can never satisfy `majority`. Pure: the replicator counts, this module decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from amcp.errors import RequestTimeout
from crdt.errors import CrdtError, CrdtValueError

__all__ = [
    "LEVELS",
    "ConcernError",
    "Level",
    "ReadConcernError",
    "UnseenRemoveError",
    "WriteConcernError",
    "WriteResult",
    "check_level",
    "needed",
]

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


class ConcernError(CrdtError, RequestTimeout):
    """Too few replicas answered before the timeout. Also a RequestTimeout, so the CLI
    maps it to exit code 3."""

    verb = "answered"
    tail = ""  # what the CLI adds to the message

    def __init__(
        self,
        acks: int,
        needed: int,
        level: str = "",
        timeout: float | None = None,
        message: str | None = None,
        members: int | None = None,
    ):
        self.acks = acks
        self.needed = needed
        self.level = level
        self.members = members
        within = f" within {timeout:g}s" if timeout is not None else ""
        # the three numbers apart: "1 of 2" read as if there were two members, not three
        of = f" of {members} member{'s' * (members != 1)}" if members is not None else ""
        concern = f" ({level}{of})" if level else ""
        replicas = "replica" if acks == 1 else "replicas"
        super().__init__(
            message or f"{acks} {replicas} {self.verb}, {needed} needed{concern}{within}"
        )


class WriteConcernError(ConcernError):
    """A write missed its concern. It is applied locally and may still spread (a CRDT write
    cannot be taken back), but it was never reported as done."""

    verb = "acknowledged"
    tail = "; it is not done (it may still spread)"


class ReadConcernError(ConcernError):
    """A read could not gather enough answers; nothing is returned."""


class UnseenRemoveError(ConcernError):
    """An OR-set remove removes only the adds its replica has seen: the item was on none of
    the members that answered, and the silent ones may hold it, so nothing was removed."""

    def __init__(
        self, key: str, item: object, answered: int, members: int, silent: list[str], level: str
    ):
        super().__init__(
            answered,
            members,
            level,
            message=f"{item!r} is not in {key} on the {answered} of {members} members that "
            f"answered ({', '.join(silent)} did not answer and may hold it); nothing was removed",
        )
