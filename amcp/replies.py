"""A bus's reply inbox: one wildcard subscription, a future per pending request.

A reply is opened (verified, replay-checked) like any frame: a forged or replayed one is
reported and its request goes on waiting for a genuine reply. NATS's status 503 on the
inbox means that nobody serves the request's subject.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from nats.aio.msg import Msg as NatsMsg
from nats.nuid import NUID

from amcp.errors import FrameRejected, NoResponders, RequestTimeout
from amcp.message import INBOX_PREFIX, Message
from amcp.protocol import Opener

__all__ = ["ReplyInbox"]


class ReplyInbox:
    """Pending requests by token; `subject` is the inbox's wildcard to subscribe."""

    def __init__(
        self, opener: Opener, on_reject: Callable[[FrameRejected, str, bool], None]
    ) -> None:
        self.prefix = f"{INBOX_PREFIX}{NUID().next().decode()}"
        self.subject = f"{self.prefix}.*"
        self.opener = opener
        self._on_reject = on_reject
        self._pending: dict[str, tuple[asyncio.Future[Message], str, asyncio.TimerHandle]] = {}
        self._next_token = 0

    def expect(self, subject: str, timeout: float) -> tuple[str, asyncio.Future[Message]]:
        """A reply-to for a request to `subject`, and the future of its reply, which fails
        with RequestTimeout after `timeout` seconds. `forget` it once the request ends."""
        self._next_token += 1
        token = str(self._next_token)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Message] = loop.create_future()
        timer = loop.call_later(timeout, _expire, fut, subject, timeout)
        self._pending[token] = (fut, subject, timer)
        return f"{self.prefix}.{token}", fut

    def forget(self, reply: str) -> None:
        """The request ended (answered or not): its timer stops, a late reply is ignored."""
        pending = self._pending.pop(reply.rpartition(".")[2], None)
        if pending is not None:
            pending[2].cancel()

    def waiting_on(self, subject: str) -> list[asyncio.Future[Message]]:
        """The futures of the requests pending to `subject`."""
        return [fut for fut, to, _ in self._pending.values() if to == subject]

    def fail_all(self, error: Exception) -> None:
        for fut, _, _ in self._pending.values():
            if not fut.done():
                fut.set_exception(error)

    async def on_reply(self, nmsg: NatsMsg) -> None:
        """The inbox subscription's callback."""
        token = nmsg.subject.rpartition(".")[2]
        pending = self._pending.get(token)
        if pending is None or pending[0].done():
            return  # a late reply to a request that already ended
        fut, subject, _ = pending
        if nmsg.headers and nmsg.headers.get("Status") == "503":
            fut.set_exception(NoResponders(f"no responders on {subject}"))
            return
        try:
            replies = self.opener.open_all(nmsg.subject, nmsg.data)  # a batch, too
        except FrameRejected as rejected:
            # keep waiting for a genuine reply
            self._on_reject(rejected, nmsg.subject, self.opener.in_flight(rejected, nmsg.data))
            return
        if replies:
            fut.set_result(replies[0])


def _expire(fut: asyncio.Future[Message], subject: str, timeout: float) -> None:
    if not fut.done():
        fut.set_exception(RequestTimeout(f"no verified reply on {subject} within {timeout}s"))
