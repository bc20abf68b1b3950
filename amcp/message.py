"""A verified inbound message: the envelope's fields, the subject it came on, and a way
to reply. Built by `Opener` only after the frame's MAC and replay checks passed.
"""

from __future__ import annotations

from typing import Any, Protocol

from amcp.envelope import Envelope
from amcp.errors import AmcpError
from amcp.tracing import SpanContext, received

__all__ = ["BAD_REPLY", "INBOX_PREFIX", "REPLY_HEADER", "Message"]

REPLY_HEADER = "reply-to"  # signed reply subject; NATS's own reply field is not trusted
INBOX_PREFIX = "_INBOX."  # every Bus takes its replies under this prefix
BAD_REPLY = "bad_reply"
"""The counter of requests whose reply-to was not an inbox: never answered, since a
reply there would publish the answer, signed by the responder, wherever the caller chose
(another role's subjects, which NATS permissions would refuse the caller itself)."""


class _Publisher(Protocol):
    def publish(
        self,
        subject: str,
        body: Any,
        *,
        kind: str = ...,
        headers: dict[str, str] | None = ...,
        immediate: bool = ...,
    ) -> Any: ...

    def refuse_reply(self, msg: Message) -> None: ...


class Message:
    """A verified message. `bus` is whoever can publish replies (None in sans-I/O use).

    The compiled `Opener.open` (amcp._speedups) fills the three slots directly instead of
    calling `__init__`, so `__init__` must stay those three assignments.
    """

    __slots__ = ("bus", "env", "subject")

    def __init__(self, subject: str, env: Envelope, bus: _Publisher | None = None) -> None:
        self.subject = subject
        self.env = env
        self.bus = bus

    body = property(lambda self: self.env.body, doc="The decoded body.")
    sender = property(lambda self: self.env.sender, doc="Who signed it.")
    kind = property(lambda self: self.env.kind)
    headers = property(lambda self: self.env.headers)
    seq = property(lambda self: self.env.seq)
    epoch = property(lambda self: self.env.epoch)
    ts_ms = property(lambda self: self.env.ts_ms)
    msg_id = property(lambda self: self.env.msg_id)

    @property
    def trace(self) -> SpanContext | None:
        """The sender's span (its signed `traceparent`), or None if it carries no valid one."""
        return received(self.env.headers)

    @property
    def reply_to(self) -> str | None:
        """The signed reply subject of a request."""
        return self.env.headers.get(REPLY_HEADER)

    async def respond(
        self, body: Any, kind: str = "rep", headers: dict[str, str] | None = None
    ) -> None:
        reply = self.reply_to
        if reply is None or self.bus is None:
            raise AmcpError(f"message on {self.subject} is not a request; nothing to reply to")
        if not reply.startswith(INBOX_PREFIX):
            self.bus.refuse_reply(self)  # counted and logged; nothing is published
            return
        await self.bus.publish(reply, body, kind=kind, headers=headers, immediate=True)

    def __repr__(self) -> str:
        return (
            f"Message({self.subject!r}, sender={self.sender!r}, seq={self.seq}, kind={self.kind!r})"
        )
