"""Errors of the CRDT core, rooted in amcp's one hierarchy so callers catch AmcpError."""

from __future__ import annotations

from amcp.errors import AmcpError

__all__ = [
    "ClockDriftError",
    "CorruptStoreError",
    "CrdtDecodeError",
    "CrdtError",
    "CrdtTypeMismatch",
    "CrdtValueError",
    "PersistenceError",
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
