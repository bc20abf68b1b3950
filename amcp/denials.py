"""Permission refusals by nats-server: what its -ERR says, and who waits to hear of one.

The server refuses a PUB or SUB that the user's permissions do not allow with an -ERR of
its own, later and apart from the publish (nats-py hands it to error_cb); so a sender that
must know registers a future on the subject first (`DenialWatches.watch`).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterator
from typing import Any, Literal

__all__ = ["DenialWatches", "refusal"]

_VIOLATION = re.compile(r'permissions violation for (publish|subscription) to "([^"]*)"', re.I)


def refusal(error: Exception) -> tuple[Literal["publish", "subscribe"], str] | None:
    """(operation, subject) when `error` is the server refusing one, else None."""
    violation = _VIOLATION.search(str(error))
    if violation is None:
        return None
    operation = "publish" if violation[1].lower() == "publish" else "subscribe"
    return operation, violation[2]


class DenialWatches:
    """Futures to fail when the server refuses a publish to their subject."""

    def __init__(self) -> None:
        self._by_subject: dict[str, list[asyncio.Future[Any]]] = {}

    @contextlib.contextmanager
    def watch(self, subject: str, fut: asyncio.Future[Any]) -> Iterator[None]:
        """While open, `fut` is among those `on(subject)` returns."""
        watches = self._by_subject.setdefault(subject, [])
        watches.append(fut)
        try:
            yield
        finally:
            watches.remove(fut)
            if not watches:
                del self._by_subject[subject]

    def on(self, subject: str) -> list[asyncio.Future[Any]]:
        """The futures watching `subject` now."""
        return list(self._by_subject.get(subject, ()))
