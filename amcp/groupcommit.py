"""Group commit per subject, with no timer: the first message goes out at once; those
submitted while that frame is in flight (handed to the connection during this loop turn)
wait and go out together at the next turn, in one frame, and so on while they keep coming.

A lone message is therefore never delayed, and a burst (many proposals in flight, a batch
frame of proposals answered with ballots) costs two frames instead of one each. The
sender sees each group whole, so it can sign a group once (consensus ballots: one identity
signature over the batch) before sealing it (`Bus.publish_group`). Each queued item keeps
the span it was submitted in (amcp.tracing): `group_spans` holds them while its group is
handed to the sender, so each message of the frame carries its own trace context.

    commits = GroupCommit(send)            # send(subject, items) -> Awaitable[None]
    sent = commits.submit(subject, item)   # the send if it goes now, None if queued
    if sent is not None:
        await sent
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from amcp.ratelog import RateLimitedLog
from amcp.tracing import SpanContext, current_span, group_spans

__all__ = ["GroupCommit", "GroupSend", "OnGroupError"]

log = logging.getLogger("amcp.groupcommit")

T = TypeVar("T")

GroupSend = Callable[[str, Sequence[T]], Awaitable[None]]
"""Sends `items` (one or more, in order) to `subject` as one frame; raises (at once or
when awaited) if it cannot."""
OnGroupError = Callable[[str, Sequence[T], BaseException], None]
"""A queued group's send failed: (subject, its items, the error)."""


class GroupCommit(Generic[T]):
    """Per-subject group commit: at most `max_items` messages share one send. Needs a
    running loop. A queued group that fails to go is reported to `on_error` (by default
    logged, rate-limited) and counted in `errors`: its submitters are not waiting on it."""

    def __init__(
        self,
        send: GroupSend[T],
        *,
        max_items: int = 64,
        on_error: OnGroupError[T] | None = None,
    ) -> None:
        if max_items < 1:
            raise ValueError("max_items must be at least 1")
        self._send = send
        self.max_items = max_items
        self._on_error = on_error
        self._loop = asyncio.get_running_loop()
        # subject -> what queued while its last frame was in flight; present = in flight
        self._waiting: dict[str, list[T]] = {}
        self._spans: dict[str, list[SpanContext | None]] = {}  # the span of each, in step
        self._sending: set[asyncio.Future[None]] = set()
        self._ratelog = RateLimitedLog(log)
        self.frames = 0
        self.items = 0
        self.errors = 0

    def submit(self, subject: str, item: T) -> Awaitable[None] | None:
        """Send `item` now if nothing is in flight on `subject`: the send is returned, for
        the caller to await at once (its error is raised there). Else queue it for the
        next group and return None: a caller handling messages one by one goes on to the
        next, which joins the same group."""
        waiting = self._waiting.get(subject)
        if waiting is None:  # idle: at once, and what comes this turn waits for the next
            self._waiting[subject] = []
            self._spans[subject] = []
            self._loop.call_soon(self._next, subject)
            self.frames += 1
            self.items += 1
            return self._send(subject, (item,))  # in the submitter's own span
        waiting.append(item)
        self._spans[subject].append(current_span.get())
        return None

    def in_flight(self, subject: str) -> bool:
        """Whether a frame to `subject` went out this loop turn (a submit now would wait)."""
        return subject in self._waiting

    def _next(self, subject: str) -> None:
        """A loop turn after a send: the items that queued meanwhile go as one group (the
        subject stays in flight one more turn), or the subject is idle again."""
        waiting = self._waiting.pop(subject, None)
        spans = self._spans.pop(subject, [])
        if not waiting:
            return
        self._waiting[subject] = []
        self._spans[subject] = []
        self._loop.call_soon(self._next, subject)
        for start in range(0, len(waiting), self.max_items):
            group = waiting[start : start + self.max_items]
            self.frames += 1
            self.items += len(group)
            token = group_spans.set(tuple(spans[start : start + self.max_items]))
            try:
                sent = asyncio.ensure_future(self._send(subject, group))
            except Exception as exc:  # raised before any await (an encoding error)
                self._failed(subject, group, exc)
                continue
            finally:
                group_spans.reset(token)
            self._sending.add(sent)  # referenced until done (the loop keeps weak ones)
            sent.add_done_callback(self._sending.discard)
            sent.add_done_callback(lambda task, g=group: self._done(subject, g, task))

    def _done(self, subject: str, group: list[T], task: asyncio.Future[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._failed(subject, group, task.exception())  # type: ignore[arg-type]

    def _failed(self, subject: str, group: list[T], exc: BaseException) -> None:
        self.errors += 1
        if self._on_error is not None:
            self._on_error(subject, group, exc)
        else:
            self._ratelog.log(
                logging.ERROR, subject, "a group of %d on %s not sent: %s", len(group), subject, exc
            )
