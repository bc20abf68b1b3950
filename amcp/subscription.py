"""A verified subscription: every frame is opened (verified, replay-checked, a batch split)
before its messages reach a handler or the iterator. What goes wrong is reported to the
bus that made it, through two callbacks, and never raises into the NATS reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from nats.aio.msg import Msg as NatsMsg

from amcp.envelope import FLAG_BATCH
from amcp.errors import AmcpError, FrameRejected, RequestTimeout
from amcp.message import Message
from amcp.protocol import Opener
from amcp.tracing import TRACEPARENT, SpanContext, current_span, received

__all__ = ["Handler", "Subscription"]

Handler = Callable[[Message], Awaitable[None] | None]
OnReject = Callable[[FrameRejected, str, bool], None]
"""(rejection, subject, in flight at the receiver's start: Opener.in_flight): a frame was
refused."""
OnHandlerError = Callable[[str, str], None]
"""(subject, sender): the handler raised; called inside the `except`, so it may log it."""


class Subscription:
    """A verified subscription: a handler is called per message, or iterate with `async for`."""

    def __init__(
        self,
        subject: str,
        queue: str | None,
        opener: Opener,
        handler: Handler | None,
        backlog: int,
        *,
        on_reject: OnReject,
        on_handler_error: OnHandlerError,
    ) -> None:
        self.subject = subject
        self.queue = queue
        self.opener = opener
        self.delivered = 0
        self._handler = handler
        self._is_async = handler is not None and inspect.iscoroutinefunction(handler)
        self._queue: asyncio.Queue[Message] | None = (
            asyncio.Queue(backlog) if handler is None else None
        )
        self._on_reject = on_reject
        self._on_handler_error = on_handler_error
        self._nats_sub: Any = None
        self._trace_value: str | None = None  # the last lone traceparent header, its context
        self._trace: SpanContext | None = None

    async def _on_nats_msg(self, nmsg: NatsMsg) -> None:
        subject = nmsg.subject
        try:
            msg = self.opener.open(subject, nmsg.data)
        except FrameRejected as rejected:
            self._on_reject(rejected, subject, self.opener.in_flight(rejected, nmsg.data))
            return
        if msg.env.flags & FLAG_BATCH:
            batch, dropped = self.opener.split(msg)
            for rejected in dropped:
                self._on_reject(rejected, subject, False)
        else:
            batch = (msg,)
        for msg in batch:
            self.delivered += 1
            if self._queue is not None:
                await self._queue.put(msg)  # bounded: a slow reader backs up into NATS
                continue
            # The handler works in the sender's span, or in none: not in whatever span was
            # current where this subscription was made. This runs in the subscription's own
            # reader task (nats-py's), so each message setting its own is the reset, and a
            # stream of one span's messages sets it once.
            # A stream of one span's messages: the header compared, not looked up again.
            # Only a lone traceparent is remembered (a tracestate changes the context).
            headers = msg.env.headers
            value = headers.get(TRACEPARENT) if headers else None
            if value is None:
                context = None
            elif value == self._trace_value and len(headers) == 1:
                context = self._trace
            else:
                context = received(headers)
                lone = len(headers) == 1
                self._trace_value, self._trace = (value, context) if lone else (None, None)
            if current_span.get() is not context:
                current_span.set(context)
            try:
                if self._is_async:
                    await self._handler(msg)  # type: ignore[misc]
                else:
                    result = self._handler(msg)  # type: ignore[misc]
                    if result is not None and inspect.isawaitable(result):
                        await result
            except Exception:
                self._on_handler_error(self.subject, msg.sender)

    def __aiter__(self) -> AsyncIterator[Message]:
        if self._queue is None:
            raise AmcpError("this subscription has a handler; it cannot also be iterated")
        return self

    async def __anext__(self) -> Message:
        assert self._queue is not None
        return await self._queue.get()

    async def next(self, timeout: float | None = None) -> Message:
        """The next verified message; RequestTimeout if none arrives in time."""
        try:
            return await asyncio.wait_for(self.__anext__(), timeout)
        except TimeoutError:
            raise RequestTimeout(f"no message on {self.subject} within {timeout}s") from None

    async def unsubscribe(self) -> None:
        if self._nats_sub is not None:
            with contextlib.suppress(Exception):
                await self._nats_sub.unsubscribe()
            self._nats_sub = None
