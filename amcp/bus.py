"""The Bus: the one place that talks to nats-py.

Every outbound message is sealed (signed, numbered) and every inbound frame is opened
(verified, replay-checked) before user code sees it. A rejected frame is counted by reason
and logged, rate-limited; it never raises into a handler. A handler that raises is logged
and the subscription goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import socket
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg as NatsMsg
from nats.nuid import NUID

from amcp.envelope import FrameLimits
from amcp.errors import AmcpError, ConnectError, FrameRejected, NoResponders, RequestTimeout
from amcp.keyring import Keyring
from amcp.message import REPLY_HEADER, Message
from amcp.protocol import Opener, RejectionStats, Sealer
from amcp.ratelog import RateLimitedLog
from amcp.replay import ReplayGuard
from amcp.subjects import Subjects, validate_subject

__all__ = ["Bus", "Message", "Subscription"]

log = logging.getLogger("amcp.bus")
Handler = Callable[["Message"], Awaitable[None] | None]


class Subscription:
    """A verified subscription: a handler is called per message, or iterate with `async for`."""

    def __init__(
        self,
        bus: Bus,
        subject: str,
        queue: str | None,
        opener: Opener,
        handler: Handler | None,
        backlog: int,
    ) -> None:
        self.bus = bus
        self.subject = subject
        self.queue = queue
        self.opener = opener
        self.delivered = 0
        self._handler = handler
        self._is_async = handler is not None and inspect.iscoroutinefunction(handler)
        self._queue: asyncio.Queue[Message] | None = (
            asyncio.Queue(backlog) if handler is None else None
        )
        self._nats_sub: Any = None

    async def _on_nats_msg(self, nmsg: NatsMsg) -> None:
        subject = nmsg.subject
        try:
            msg = self.opener.open(subject, nmsg.data)
        except FrameRejected as rejected:
            self.bus._note_rejection(rejected, subject)
            return
        self.delivered += 1
        if self._queue is not None:
            await self._queue.put(msg)  # bounded: a slow reader backs up into NATS's limits
            return
        try:
            if self._is_async:
                await self._handler(msg)  # type: ignore[misc]
            else:
                result = self._handler(msg)  # type: ignore[misc]
                if result is not None and inspect.isawaitable(result):
                    await result
        except Exception:
            self._handler_failed(msg.sender)

    def _handler_failed(self, sender: str) -> None:
        self.bus.handler_errors += 1
        self.bus._ratelog.log(
            logging.ERROR,
            f"handler:{self.subject}",
            "handler for %s raised on a message from %s",
            self.subject,
            sender,
            exc_info=True,
        )

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


class Bus:
    """Signed, replay-checked publish/subscribe and request/reply over one NATS connection."""

    def __init__(
        self,
        nc: NatsClient,
        keyring: Keyring,
        sender: str,
        *,
        cluster: str = "default",
        limits: FrameLimits | None = None,
        replay_window: int = 1024,
        skew_seconds: float = 30.0,
        max_senders: int = 4096,
    ) -> None:
        self.nc = nc
        self.keyring = keyring
        self.sender = sender
        self.cluster = cluster
        self.subjects = Subjects(cluster)
        self.limits = limits or FrameLimits()
        self.stats = RejectionStats()
        self.sealer = Sealer(sender, keyring, limits=self.limits)
        self.handler_errors = 0
        self.on_reject: Callable[[str, str, str], None] | None = None
        self._guard_args = (replay_window, int(skew_seconds * 1000), max_senders)
        self._ratelog = RateLimitedLog(log)
        self._subs: list[Subscription] = []
        self._inbox = f"_INBOX.{NUID().next().decode()}"
        self._inbox_opener = self._opener()
        self._inbox_sub: Any = None
        self._pending: dict[str, tuple[asyncio.Future[Message], str]] = {}
        self._next_token = 0
        self._keyring_task: asyncio.Task[None] | None = None
        self._js: Any = None  # the JetStream context, made on first use
        self._closed = False

    # -- lifecycle --------------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        servers: str | list[str] = "nats://127.0.0.1:4222",
        *,
        keyring: Keyring,
        sender: str | None = None,
        cluster: str = "default",
        connect_timeout: float = 2.0,
        limits: FrameLimits | None = None,
        replay_window: int = 1024,
        skew_seconds: float = 30.0,
        max_senders: int = 4096,
        connect_attempts: int = 2,
        **nats_options: Any,
    ) -> Bus:
        """Connect and start the reply inbox. Reconnects forever once connected."""
        urls = [servers] if isinstance(servers, str) else list(servers)
        sender = sender or f"{socket.gethostname()}-{os.getpid()}"
        bus = cls(
            NatsClient(),
            keyring,
            sender,
            cluster=cluster,
            limits=limits,
            replay_window=replay_window,
            skew_seconds=skew_seconds,
            max_senders=max_senders,
        )
        options: dict[str, Any] = {
            "name": sender,
            "connect_timeout": connect_timeout,
            "allow_reconnect": True,
            # Bounded tries for the first connection so a wrong URL fails fast; once
            # connected, reconnect forever (set below).
            "max_reconnect_attempts": connect_attempts,
            "reconnect_time_wait": 0.5,
            # Subjects are validated once each when their MAC state is cached (signing.py),
            # so nats-py's per-message regex is redundant on this connection.
            "skip_subject_validation": True,
            "error_cb": bus._on_nats_error,
            "disconnected_cb": bus._on_disconnect,
            "reconnected_cb": bus._on_reconnect,
        }
        options.update(nats_options)
        try:
            await bus.nc.connect(servers=urls, **options)
        except Exception as exc:
            with contextlib.suppress(Exception):
                await bus.nc.close()
            raise ConnectError(
                f"cannot connect to NATS at {', '.join(urls)}: {exc or type(exc).__name__}"
            ) from None
        bus.nc.options["max_reconnect_attempts"] = -1
        await bus._start()
        return bus

    async def _on_nats_error(self, exc: Exception) -> None:
        if not self._closed and self._inbox_sub is not None:  # quiet until first connected
            log.warning("nats error on %s: %s", self.sender, exc)

    async def _on_disconnect(self) -> None:
        if not self._closed and self._inbox_sub is not None:
            log.warning("%s disconnected from NATS; reconnecting", self.sender)

    async def _on_reconnect(self) -> None:
        log.info("%s reconnected to %s", self.sender, self.connected_url)

    async def _start(self) -> None:
        self._inbox_sub = await self.nc.subscribe(f"{self._inbox}.*", cb=self._on_reply)
        if self.keyring.path is not None:
            self._keyring_task = asyncio.create_task(self._watch_keyring())

    async def close(self) -> None:
        """Drain: stop receiving, let in-flight handlers finish, flush and close."""
        if self._closed:
            return
        self._closed = True
        if self._keyring_task is not None:
            self._keyring_task.cancel()
        for fut, _ in self._pending.values():
            if not fut.done():
                fut.set_exception(AmcpError("bus closed"))
        with contextlib.suppress(Exception):
            await self.nc.drain()
        with contextlib.suppress(Exception):
            await self.nc.close()

    async def __aenter__(self) -> Bus:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def is_connected(self) -> bool:
        return self.nc.is_connected

    @property
    def connected_url(self) -> str | None:
        url = self.nc.connected_url
        return None if url is None else f"{url.scheme}://{url.netloc}"

    @property
    def rejections(self) -> dict[str, int]:
        """Rejected inbound frames by reason, over every subscription of this bus."""
        return self.stats.as_dict()

    # -- messaging --------------------------------------------------------------------

    def publish(
        self, subject: str, body: Any, *, kind: str = "msg", headers: dict[str, str] | None = None
    ) -> Awaitable[None]:
        """Sign and publish one message; await the result.

        A plain function returning nats-py's coroutine, not a coroutine of its own: one
        frame less per message on the hottest path (signing errors still raise here).
        """
        return self.nc.publish(subject, self.sealer.seal(subject, body, kind, headers))

    async def publish_frame(self, subject: str, frame: bytes, reply: str = "") -> None:
        """Publish pre-sealed bytes (batches, tests that forge or replay frames)."""
        await self.nc.publish(subject, frame, reply=reply)

    async def subscribe(
        self,
        subject: str,
        handler: Handler | None = None,
        *,
        queue: str | None = None,
        backlog: int = 1024,
    ) -> Subscription:
        """Subscribe; with no handler, iterate the returned Subscription."""
        validate_subject(subject, wildcards=True)  # nats-py's own check is off (see connect)
        if queue:
            validate_subject(queue)  # same rules: no spaces, no wildcards
        sub = Subscription(self, subject, queue, self._opener(), handler, backlog)
        sub._nats_sub = await self.nc.subscribe(subject, queue=queue or "", cb=sub._on_nats_msg)
        self._subs.append(sub)
        return sub

    async def request(
        self,
        subject: str,
        body: Any,
        *,
        timeout: float = 2.0,
        kind: str = "req",
        headers: dict[str, str] | None = None,
    ) -> Message:
        """Send a signed request and await one verified reply."""
        self._next_token += 1
        token = str(self._next_token)
        reply = f"{self._inbox}.{token}"
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Message] = loop.create_future()
        self._pending[token] = (fut, subject)
        timer = loop.call_later(timeout, _expire, fut, subject, timeout)
        try:
            all_headers = {REPLY_HEADER: reply, **headers} if headers else {REPLY_HEADER: reply}
            await self.nc.publish(
                subject, self.sealer.seal(subject, body, kind, all_headers), reply=reply
            )
            return await fut
        finally:
            timer.cancel()
            self._pending.pop(token, None)

    async def flush(self, timeout: float = 5.0) -> None:
        """Return once the server has processed everything sent so far (subs included).

        Two PING/PONG round trips, not one: nats-py 2.16 writes the PING straight to the
        socket while SUB/PUB commands wait in its pending buffer for the flusher task, so
        one PONG can come back before a just-issued SUB reached the server (the bug the
        older nats.py2 fixed in its PR #24). By the first PONG the woken flusher has
        written that buffer, so the second PING travels behind it.
        """
        await self.nc.flush(timeout=timeout)
        await self.nc.flush(timeout=timeout)

    # -- JetStream: durable streams of signed frames ------------------------------------

    async def ensure_stream(
        self, name: str, subjects: list[str], *, max_msgs: int = -1, max_bytes: int = -1
    ) -> None:
        """Create a file-backed stream unless it exists (idempotent for the same config)."""
        from nats.js.api import StorageType, StreamConfig

        config = StreamConfig(
            name=name,
            subjects=subjects,
            max_msgs=max_msgs,
            max_bytes=max_bytes,
            storage=StorageType.FILE,
        )
        try:
            await self.nc.jetstream().add_stream(config)
        except Exception as exc:
            raise AmcpError(f"cannot create JetStream stream {name}: {exc}") from None

    async def publish_durable(
        self,
        subject: str,
        body: Any,
        *,
        kind: str = "msg",
        headers: dict[str, str] | None = None,
        timeout: float = 2.0,
    ) -> int:
        """Sign and publish into a JetStream stream; return its stream sequence once stored."""
        stored = await self.send_durable(subject, body, kind=kind, headers=headers, timeout=timeout)
        return await stored

    async def send_durable(
        self,
        subject: str,
        body: Any,
        *,
        kind: str = "msg",
        headers: dict[str, str] | None = None,
        timeout: float = 2.0,
    ) -> Awaitable[int]:
        """Sign and hand one message to JetStream. Returns once it is sent, in call order,
        with an awaitable (await it) of its stream sequence: several writes can then be in
        flight and still be stored in the order they were sent."""
        frame = self.sealer.seal(subject, body, kind, headers)
        if self._js is None:  # one context: publish_async keeps its reply inbox there
            self._js = self.nc.jetstream()
        try:
            ack = await self._js.publish_async(subject, frame)
        except Exception as exc:
            raise AmcpError(f"JetStream did not take the message on {subject}: {exc}") from None
        return _stored(ack, subject, timeout)

    async def read_stream(
        self,
        stream: str,
        *,
        subject: str | None = None,
        last: int | None = None,
        timeout: float = 2.0,
    ) -> list[tuple[int, str, bytes]]:
        """Stored frames as (stream sequence, subject, frame), oldest first, the `last` ones.

        The frames are returned unverified: they are old by design, so the caller checks
        them with an Opener of its own rather than this bus's live replay windows.
        """
        from nats.js.api import ConsumerConfig, DeliverPolicy
        from nats.js.errors import NotFoundError

        js = self.nc.jetstream()
        try:
            info = await js.stream_info(stream, subjects_filter=subject)
        except NotFoundError:
            return []
        except Exception as exc:
            raise AmcpError(f"cannot read JetStream stream {stream}: {exc}") from None
        state = info.state
        total = sum((state.subjects or {}).values()) if subject else state.messages
        if not total or (last is not None and last < 1):
            return []
        config = ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
        if subject is None and last is not None:
            config.deliver_policy = DeliverPolicy.BY_START_SEQUENCE
            config.opt_start_seq = max(state.first_seq, state.last_seq - last + 1)
        sub = await js.subscribe(
            subject or ">", stream=stream, ordered_consumer=True, config=config
        )
        frames: deque[tuple[int, str, bytes]] = deque(maxlen=last)
        try:
            while True:
                msg = await sub.next_msg(timeout)
                meta = msg.metadata
                frames.append((meta.sequence.stream, msg.subject, msg.data))
                if meta.num_pending == 0:
                    break
        except TimeoutError:
            raise RequestTimeout(f"stream {stream} stopped delivering after {timeout}s") from None
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        return list(frames)

    # -- internals --------------------------------------------------------------------

    def _opener(self) -> Opener:
        window, skew_ms, max_senders = self._guard_args
        return Opener(
            self.keyring,
            owner=self,
            limits=self.limits,
            stats=self.stats,
            guard=ReplayGuard(window, skew_ms, max_senders),
        )

    async def _on_reply(self, nmsg: NatsMsg) -> None:
        token = nmsg.subject.rpartition(".")[2]
        pending = self._pending.get(token)
        if pending is None or pending[0].done():
            return  # a late reply to a request that already ended
        fut, subject = pending
        if nmsg.headers and nmsg.headers.get("Status") == "503":
            fut.set_exception(NoResponders(f"no responders on {subject}"))
            return
        try:
            fut.set_result(self._inbox_opener.open(nmsg.subject, nmsg.data))
        except FrameRejected as rejected:
            self._note_rejection(rejected, nmsg.subject)  # keep waiting for a genuine reply

    def _note_rejection(self, rejected: FrameRejected, subject: str) -> None:
        self._ratelog.log(
            logging.WARNING, rejected.reason, "rejected frame on %s: %s", subject, rejected
        )
        if self.on_reject is not None:
            self.on_reject(rejected.reason, subject, rejected.detail)

    async def _watch_keyring(self, interval: float = 2.0) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                if self.keyring.reload_if_changed():
                    log.info(
                        "keyring reloaded from %s: %d keys",
                        self.keyring.path,
                        len(self.keyring.keys),
                    )
            except AmcpError as exc:
                log.error("keyring reload failed, keeping the old keys: %s", exc)


async def _stored(ack: asyncio.Future[Any], subject: str, timeout: float) -> int:
    try:
        return (await asyncio.wait_for(ack, timeout)).seq
    except Exception as exc:
        why = str(exc) or type(exc).__name__
        raise AmcpError(f"JetStream did not store the message on {subject}: {why}") from None


def _expire(fut: asyncio.Future[Message], subject: str, timeout: float) -> None:
    if not fut.done():
        fut.set_exception(RequestTimeout(f"no verified reply on {subject} within {timeout}s"))
