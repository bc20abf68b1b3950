"""The netopt exception hierarchy: every error netopt raises on purpose derives from NetoptError.

The whole tree (netopt imports no amcp, so its root is its own; invalid arguments raise
the standard ValueError):

    Exception
    └── NetoptError               base of every error raised on purpose
        ├── DecompressionError    a compressed payload is malformed or inflates too far
        └── BulkheadFull          every slot and the waiting queue are taken
"""

from __future__ import annotations

from typing import Literal

__all__ = ["BulkheadFull", "DecompressionError", "NetoptError"]


class NetoptError(Exception):
    """Base class of every error netopt raises on purpose."""


class DecompressionError(NetoptError):
    """A compressed payload was refused: it does not decompress, or it inflates past a limit."""

    def __init__(self, reason: Literal["malformed", "oversize"], detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class BulkheadFull(NetoptError):
    """A bulkhead refused a call because all its slots and its waiting queue are taken."""

    def __init__(self, name: str, max_concurrent: int, max_waiting: int) -> None:
        super().__init__(
            f"bulkhead {name!r} is full: {max_concurrent} calls running "
            f"and {max_waiting} waiting (the limits); refused without waiting"
        )
        self.name = name
        self.max_concurrent = max_concurrent
        self.max_waiting = max_waiting
