"""Errors of the CRDT core, rooted in amcp's one hierarchy so callers catch AmcpError.

The whole tree (amcp's bases marked; the concern errors are also RequestTimeouts, so the
CLI maps them to exit code 3 as it does any timeout):

    AmcpError                          (amcp.errors)
    ├── RequestTimeout                 (amcp.errors)
    └── CrdtError
        ├── CrdtValueError             a local argument is invalid (also a ValueError)
        ├── CrdtDecodeError            a wire value is not a valid state or delta
        ├── CrdtTypeMismatch           a key holds a CRDT of another type
        ├── ClockDriftError            a remote timestamp is too far ahead
        ├── PersistenceError           the data directory cannot be used
        │   └── CorruptStoreError      a snapshot or log record fails its checksum
        └── ConcernError               too few replicas answered (also a RequestTimeout)
            ├── WriteConcernError      a write missed its concern
            ├── ReadConcernError       a read gathered too few answers
            └── UnseenRemoveError      an OR-set remove found the item on no member that answered
"""

from __future__ import annotations

from amcp.errors import AmcpError, RequestTimeout

__all__ = [
    "ClockDriftError",
    "ConcernError",
    "CorruptStoreError",
    "CrdtDecodeError",
    "CrdtError",
    "CrdtTypeMismatch",
    "CrdtValueError",
    "PersistenceError",
    "ReadConcernError",
    "UnseenRemoveError",
    "WriteConcernError",
]


class CrdtError(AmcpError):
    """Base class of every error the CRDT core raises on purpose."""


class CrdtValueError(CrdtError, ValueError):
    """A local argument is invalid (unsupported value type, non-positive amount, bad name)."""


class CrdtDecodeError(CrdtError):
    """A wire value is not a valid CRDT state or delta. The only error from_wire raises."""


class CrdtTypeMismatch(CrdtError):
    """A key already holds a CRDT of another type; the delta or mutation was not applied."""


class ClockDriftError(CrdtError):
    """A remote timestamp is further in the future than the clock's max offset allows."""


class PersistenceError(CrdtError):
    """The replica's data directory cannot be used (locked, unwritable, misused store)."""


class CorruptStoreError(PersistenceError):
    """A snapshot or a log record before the tail fails its checksum: refuse to guess."""


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
