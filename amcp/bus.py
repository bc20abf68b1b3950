"""The Bus: the one place that talks to nats-py.

Every outbound message is sealed (signed, numbered) and every inbound frame is opened
(verified, replay-checked) before user code sees it. A rejected frame is counted by reason
and logged, rate-limited; it never raises into a handler. A handler that raises is logged
and the subscription goes on.

Published messages are batched per subject (amcp.batching, netopt) unless batching is off
or the message is `immediate` or high-attention; batch frames are split on receipt.
Requests get adaptive timeouts (RFC 6298) and, through `request_with_retry`, a circuit
breaker per destination with jittered retries (docs/PROTOCOL.md, "Batches and compression").
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import re
import socket
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg as NatsMsg
from nats.nuid import NUID

from amcp.batching import Batcher, BatchingMode, make_strategy, subject_family
from amcp.claims import DUPLICATE, Claims
from amcp.envelope import FLAG_BATCH, FrameLimits
from amcp.errors import (
    AmcpError,
    CircuitOpen,
    ConnectError,
    FrameRejected,
    NoResponders,
    PermissionDenied,
    RequestTimeout,
)
from amcp.framebody import encode_item
from amcp.keyring import Keyring
from amcp.message import BAD_REPLY, INBOX_PREFIX, REPLY_HEADER, Message
from amcp.protocol import Opener, RejectionStats, Sealer
from amcp.ratelog import RateLimitedLog
from amcp.replay import live_guard
from amcp.security import ConnectionSecurity
from amcp.subjects import Subjects, validate_subject
from netopt import Backoff, CircuitBreaker, FamilyTraffic, PerKey, RtoEstimator, TrafficSampler

__all__ = ["Bus", "Message", "Subscription"]

log = logging.getLogger("amcp.bus")
# How nats-server reports a refused PUB or SUB (its -ERR, which nats-py hands to error_cb).
_VIOLATION = re.compile(r'permissions violation for (publish|subscription) to "([^"]*)"', re.I)
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
        if msg.env.flags & FLAG_BATCH:
            batch, dropped = self.opener.split(msg)
            for rejected in dropped:
                self.bus._note_rejection(rejected, subject)
        else:
            batch = (msg,)
        for msg in batch:
            self.delivered += 1
            if self._queue is not None:
                await self._queue.put(msg)  # bounded: a slow reader backs up into NATS
                continue
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
        batching: BatchingMode = "off",
        compress_threshold: int | None = None,
        attention_threshold: float = 0.8,
    ) -> None:
        self.nc = nc
        self.keyring = keyring
        self.sender = sender
        self.cluster = cluster
        self.subjects = Subjects(cluster)
        self.limits = limits or FrameLimits()
        self.stats = RejectionStats()
        self.sealer = Sealer(
            sender, keyring, limits=self.limits, compress_threshold=compress_threshold
        )
        self.attention_threshold = attention_threshold
        self.batcher: Batcher | None = None  # started with the connection (needs a loop)
        self._strategy = make_strategy(batching, TrafficSampler())
        self.rtos: PerKey[str, RtoEstimator] = PerKey(RtoEstimator)
        """Adaptive request timeouts, one estimator per destination subject family."""
        self.breakers: PerKey[str, CircuitBreaker] = PerKey(CircuitBreaker)
        """Circuit breakers of `request_with_retry`, one per destination subject."""
        self.handler_errors = 0
        self.on_reject: Callable[[str, str, str], None] | None = None
        self.claims = Claims(nc, cluster, holder=sender, skew_seconds=skew_seconds)
        """At most once across a queue group (`claim`), in the cluster's JetStream bucket."""
        self.stats.counts[DUPLICATE] = 0
        self.stats.counts[BAD_REPLY] = 0
        self._guard_args = (replay_window, int(skew_seconds * 1000), max_senders)
        self._ratelog = RateLimitedLog(log)
        self._subs: list[Subscription] = []
        self._inbox = f"{INBOX_PREFIX}{NUID().next().decode()}"
        self._inbox_opener = self._opener()
        self._inbox_sub: Any = None
        self._pending: dict[str, tuple[asyncio.Future[Message], str]] = {}
        self._denial_watches: dict[str, list[asyncio.Future[Any]]] = {}  # fail_on_denial
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
        batching: BatchingMode = "off",
        compress_threshold: int | None = None,
        attention_threshold: float = 0.8,
        connect_attempts: int = 2,
        security: ConnectionSecurity | None = None,
        **nats_options: Any,
    ) -> Bus:
        """Connect and start the reply inbox. Reconnects forever once connected.

        `batching`: "off" (the default: one frame per message), "adaptive" (per subject
        family, from the traffic analyser; the setting to use for streams), a fixed
        `netopt.BatchPolicy`, or any `netopt.BatchingStrategy`. A batch is one NATS
        message, so a queue group hands a whole batch to one member: publish work items
        meant to spread over a queue group with `immediate=True`, or leave batching off.
        `compress_threshold`: bodies of at least this many bytes go zlib-compressed when
        that shrinks the frame. Off by default: the attempt costs more CPU than a LAN saves
        on small frames (1 KiB: sealing 2.4 us plain, 7.7 us JSON-like, 20.7 us random).
        `attention_threshold`: `publish(..., attention=a)` with a >= it bypasses batching.
        `security`: NATS credentials and TLS (amcp.security)."""
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
            batching=batching,
            compress_threshold=compress_threshold,
            attention_threshold=attention_threshold,
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
        if security is not None:
            options.update(security.nats_options())
        options.update(nats_options)
        try:
            await bus.nc.connect(servers=urls, **options)
        except Exception as exc:
            with contextlib.suppress(Exception):  # bounded: it can hang after a TLS failure
                await asyncio.wait_for(bus.nc.close(), connect_timeout)
            raise ConnectError(
                f"cannot connect to NATS at {', '.join(urls)}: {exc or type(exc).__name__}"
            ) from None
        bus.nc.options["max_reconnect_attempts"] = -1
        await bus._start()
        return bus

    async def _on_nats_error(self, exc: Exception) -> None:
        if self._inbox_sub is None:
            # Wrong credentials or certificates on the first connect: retrying cannot
            # help, and nats-py would retry forever (it adds back servers it discovers).
            if "authorization violation" in str(exc).lower():
                raise ConnectError(f"the NATS server refused the credentials ({exc})")
            if isinstance(exc, ssl.SSLError):
                raise ConnectError(f"TLS with the NATS server failed: {exc}")
        violation = _VIOLATION.search(str(exc))
        if violation is not None:
            self._refused(violation[1].lower(), violation[2])
        elif not self._closed and self._inbox_sub is not None:  # quiet until first connected
            log.warning("nats error on %s: %s", self.sender, exc)

    def _refused(self, operation: str, subject: str) -> None:
        """The server refused a publish (or subscription) on `subject`: fail whoever awaits
        one there (fail_on_denial, requests); log it, rate-limited, when nobody does."""
        operation = "publish" if operation == "publish" else "subscribe"
        denied = PermissionDenied(operation, subject, self.nc.options.get("user"))
        waiting: list[asyncio.Future[Any]] = []
        if operation == "publish":
            waiting += self._denial_watches.get(subject, ())
            waiting += [fut for fut, to in self._pending.values() if to == subject]
        for fut in waiting:
            if not fut.done():
                fut.set_exception(denied)
        if not waiting:
            self._ratelog.log(logging.WARNING, f"denied:{subject}", "%s: %s", self.sender, denied)

    async def _on_disconnect(self) -> None:
        if not self._closed and self._inbox_sub is not None:
            log.warning("%s disconnected from NATS; reconnecting", self.sender)

    async def _on_reconnect(self) -> None:
        log.info("%s reconnected to %s", self.sender, self.connected_url)

    async def _start(self) -> None:
        self._inbox_sub = await self.nc.subscribe(f"{self._inbox}.*", cb=self._on_reply)
        if self._strategy is not None:
            self.batcher = Batcher(self.sealer, self.nc.publish, self._strategy)
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
        if self.batcher is not None:
            await self.batcher.close()  # sends every queued message before the drain
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
        self,
        subject: str,
        body: Any,
        *,
        kind: str = "msg",
        headers: dict[str, str] | None = None,
        immediate: bool = False,
        attention: float | None = None,
    ) -> Awaitable[None]:
        """Sign and publish one message; await the result.

        With batching on, the message joins its subject's batch (sent when full, at its
        linger deadline, on `flush` or `close`; a message with no recent predecessor is
        sent as soon as the loop comes round). `immediate=True`, or an `attention` score
        of at least `attention_threshold`, sends it now in a frame of its own, after any
        batch already open on the subject (so a subject's messages stay in order).
        Encoding errors raise here either way.

        A plain function returning a coroutine, not a coroutine of its own: one frame less
        per message on the hottest path.
        """
        batcher = self.batcher
        if batcher is not None:
            if not immediate and (attention is None or attention < self.attention_threshold):
                return batcher.submit(subject, body, kind, headers) or _queued()
            batcher.bypass(subject)  # counted: status shows what skipped the batches
            if batcher.holds(subject):
                return self._publish_after_batch(batcher, subject, body, kind, headers)
        return self.nc.publish(subject, self.sealer.seal(subject, body, kind, headers))

    async def _publish_after_batch(
        self, batcher: Batcher, subject: str, body: Any, kind: str, headers: dict[str, str] | None
    ) -> None:
        # Sealed after the batch, so seqs go out in order (a batch can hold more messages
        # than the receivers' replay window is wide).
        await batcher.flush_subject(subject)
        await self.nc.publish(subject, self.sealer.seal(subject, body, kind, headers))

    async def publish_checked(
        self,
        subject: str,
        body: Any,
        *,
        kind: str = "msg",
        headers: dict[str, str] | None = None,
        timeout: float = 5.0,
    ) -> None:
        """Publish one message and return once the server has taken it: PermissionDenied if
        it refused the subject to this user. `publish` cannot tell (NATS reports a refusal
        later, on its own); this waits a flush's round trips, so it is for one-shot
        senders, not streams. The server answers a PUB before the PING behind it."""
        refused: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self.fail_on_denial(subject, refused):
            try:
                await self.publish(subject, body, kind=kind, headers=headers, immediate=True)
                await self.flush(timeout)
            finally:
                denied = refused.exception() if refused.done() else None
        if denied is not None:
            raise denied

    @contextlib.contextmanager
    def fail_on_denial(self, subject: str, fut: asyncio.Future[Any]) -> Iterator[None]:
        """While open, the server refusing a publish to `subject` for this user's
        permissions fails `fut` with PermissionDenied (e.g. a proposal awaiting ballots)."""
        watches = self._denial_watches.setdefault(subject, [])
        watches.append(fut)
        try:
            yield
        finally:
            watches.remove(fut)
            if not watches:
                del self._denial_watches[subject]

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

    async def claim(self, msg: Message) -> bool:
        """Claim a verified message for this receiver: True for its first delivery anywhere
        in the cluster, False for a copy replayed into a queue group (counted and logged as
        `duplicate`, like a replay). ClaimUnavailable when JetStream cannot tell: do not act.
        Each member of a group has its own replay window; this is the group's."""
        if await self.claims.claim(msg.sender, msg.epoch, msg.seq):
            return True
        self.stats.counts[DUPLICATE] += 1
        detail = f"{msg.sender} seq {msg.seq} was already claimed in the cluster"
        self._note_rejection(FrameRejected(DUPLICATE, detail), msg.subject)
        return False

    def refuse_reply(self, msg: Message) -> None:
        """A request whose reply-to is not an inbox gets no reply: counted as `bad_reply`."""
        self.stats.counts[BAD_REPLY] += 1
        detail = f"{msg.sender} asked for a reply on {msg.reply_to!r}, not an inbox"
        self._note_rejection(FrameRejected(BAD_REPLY, detail), msg.subject)

    async def request(
        self,
        subject: str,
        body: Any,
        *,
        timeout: float | None = 2.0,
        kind: str = "req",
        headers: dict[str, str] | None = None,
    ) -> Message:
        """Send a signed request and await one verified reply.

        Every answered request is a round-trip sample for its destination's subject
        family (`rtos`, RFC 6298). `timeout=None` waits for that adaptive timeout (SRTT
        plus four RTTVAR, 0.1 s to 60 s, 1 s before the first sample), which doubles after
        each adaptive timeout until the next answer.
        """
        rto = self.rtos.get(subject_family(subject))
        wait = rto.rto if timeout is None else timeout
        self._next_token += 1
        token = str(self._next_token)
        reply = f"{self._inbox}.{token}"
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Message] = loop.create_future()
        self._pending[token] = (fut, subject)
        timer = loop.call_later(wait, _expire, fut, subject, wait)
        try:
            all_headers = {REPLY_HEADER: reply, **headers} if headers else {REPLY_HEADER: reply}
            if self.batcher is not None and self.batcher.holds(subject):
                await self.batcher.flush_subject(subject)  # keep the subject's order
            frame = self.sealer.seal(subject, body, kind, all_headers)
            started = loop.time()
            await self.nc.publish(subject, frame, reply=reply)
            msg = await fut
        except RequestTimeout:
            if timeout is None:
                rto.backoff()
            raise
        finally:
            timer.cancel()
            self._pending.pop(token, None)
        rto.observe(loop.time() - started)
        return msg

    async def request_with_retry(
        self,
        subject: str,
        body: Any,
        *,
        backoff: Backoff = Backoff(),  # noqa: B008 (frozen, so safe to share)
        timeout: float | None = None,
        kind: str = "req",
        headers: dict[str, str] | None = None,
        retry_no_responders: bool = True,
    ) -> Message:
        """A request retried on timeout or no responders, for idempotent operations only
        (the responder may see it more than once). `retry_no_responders=False`: NATS saying
        at once that nobody serves the subject is raised at once and is no failure for the
        breaker (nothing is slow; a caller polling for a service to start is not locked out).

        Up to `backoff.max_retries` retries after full-jitter delays; each attempt waits
        `timeout` (None: the adaptive RTO). A circuit breaker per destination subject
        (`breakers`) counts failures across calls: once open it refuses at once with
        CircuitOpen, until its open period ends and a probe request succeeds.
        """
        # An unsendable body is the caller's error, not the destination's: refuse it
        # before the breaker counts an attempt.
        encode_item(kind, headers, body)
        breaker = self.breakers.get(subject)
        loop = asyncio.get_running_loop()
        failure: AmcpError | None = None
        for attempt in range(backoff.max_retries + 1):
            if attempt:
                await asyncio.sleep(backoff.delay(attempt - 1))
            if not breaker.allow(loop.time()):
                raise CircuitOpen(
                    f"circuit for {subject} is {breaker.state}: too many failed requests; "
                    f"not sending for up to {breaker.open_seconds:g} s"
                ) from failure
            try:
                msg = await self.request(subject, body, timeout=timeout, kind=kind, headers=headers)
            except (RequestTimeout, NoResponders) as exc:
                if isinstance(exc, NoResponders) and not retry_no_responders:
                    breaker.on_success()  # an answer, if not the one hoped for
                    raise
                breaker.on_failure(loop.time())
                failure = exc
                continue
            except BaseException:  # cancelled or disconnected: the attempt must be reported
                breaker.on_failure(loop.time())
                raise
            breaker.on_success()
            return msg
        assert failure is not None
        raise failure

    def traffic(self) -> list[FamilyTraffic]:
        """What the traffic analyser makes of this bus's batched publishing, per subject
        family (empty unless batching is adaptive)."""
        return [] if self.batcher is None else self.batcher.traffic()

    async def flush(self, timeout: float = 5.0) -> None:
        """Return once the server has processed everything sent so far (subs included).

        Two PING/PONG round trips, not one: nats-py 2.16 writes the PING straight to the
        socket while SUB/PUB commands wait in its pending buffer for the flusher task, so
        one PONG can come back before a just-issued SUB reached the server (the bug the
        older nats.py2 fixed in its PR #24). By the first PONG the woken flusher has
        written that buffer, so the second PING travels behind it. Open batches are sent
        first, whatever their linger.
        """
        if self.batcher is not None:
            await self.batcher.flush()
        await self.nc.flush(timeout=timeout)
        await self.nc.flush(timeout=timeout)

    # -- JetStream: durable streams of signed frames ------------------------------------

    async def ensure_stream(
        self,
        name: str,
        subjects: list[str],
        *,
        max_msgs: int = -1,
        max_bytes: int = -1,
        replicas: int = 1,
    ) -> None:
        """Create a file-backed stream unless it exists; an existing one is kept as it is
        (so an operator may create it first with more `replicas`, e.g. 3 on a cluster)."""
        from nats.js.api import StorageType, StreamConfig
        from nats.js.errors import NotFoundError

        config = StreamConfig(
            name=name,
            subjects=subjects,
            max_msgs=max_msgs,
            max_bytes=max_bytes,
            storage=StorageType.FILE,
            num_replicas=replicas,
        )
        js = self.nc.jetstream()
        try:
            try:
                await js.stream_info(name)
                return
            except NotFoundError:
                await js.add_stream(config)
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
            guard=live_guard(window, skew_ms, max_senders, time.time()),  # see live_guard
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
            replies = self._inbox_opener.open_all(nmsg.subject, nmsg.data)  # a batch, too
        except FrameRejected as rejected:
            self._note_rejection(rejected, nmsg.subject)  # keep waiting for a genuine reply
            return
        if replies:
            fut.set_result(replies[0])

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


async def _queued() -> None:
    """What `publish` returns for a message that joined a batch: nothing left to wait for."""


def _expire(fut: asyncio.Future[Message], subject: str, timeout: float) -> None:
    if not fut.done():
        fut.set_exception(RequestTimeout(f"no verified reply on {subject} within {timeout}s"))
