"""The Bus: the one place that talks to nats-py.

Every outbound message is sealed (signed, numbered) and every inbound frame is opened
(verified, replay-checked) before user code sees it. A rejected frame is counted by reason
and logged, rate-limited; it never raises into a handler. A handler that raises is logged
and the subscription goes on.

Published messages are batched per subject (amcp.batching, netopt) unless batching is off
or the message is `immediate` or high-attention; batch frames are split on receipt.
Requests get adaptive timeouts (RFC 6298) and, through `request_with_retry`, a circuit
breaker per destination with jittered retries (docs/PROTOCOL.md, "Batches and compression").

What the bus composes has a module each: its options (amcp.options), subscriptions
(amcp.subscription), the reply inbox (amcp.replies), the retry loop (amcp.resilience),
permission refusals (amcp.denials), JetStream streams (amcp.jetstream) and claims
(amcp.claims).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

from nats.aio.client import Client as NatsClient

from amcp.attest import IdentityVerifier
from amcp.batching import Batcher, make_strategy, seal_frames, subject_family
from amcp.claims import DUPLICATE, Claims
from amcp.denials import DenialWatches, refusal
from amcp.envelope import FrameLimits
from amcp.errors import (
    AmcpError,
    ConfigError,
    ConnectError,
    FrameRejected,
    PermissionDenied,
    RequestTimeout,
)
from amcp.familycounts import INBOX_FAMILY, FamilyCounts, family_of
from amcp.framebody import encode_item
from amcp.jetstream import Streams
from amcp.keyring import Keyring
from amcp.message import BAD_REPLY, REPLY_HEADER, Message
from amcp.options import BusOptions
from amcp.protocol import Opener, RejectionStats, Sealer
from amcp.ratelog import RateLimitedLog
from amcp.replay import live_guard
from amcp.replies import ReplyInbox
from amcp.resilience import retry_request
from amcp.sealing import SealKeys, SealPolicy
from amcp.security import ConnectionSecurity
from amcp.settings import DEFAULT_NATS_URL
from amcp.subjects import Subjects, validate_subject
from amcp.subscription import Handler, Subscription
from amcp.tracing import group_spans, use_span, with_trace
from netopt import (
    AdaptiveBatching,
    Backoff,
    BatchPolicy,
    CircuitBreaker,
    FamilyTraffic,
    PerKey,
    RtoEstimator,
    TrafficSampler,
)

__all__ = ["Bus", "Message"]

log = logging.getLogger("amcp.bus")
ROSTER_POLL_S = 2.0  # how often the keyring and roster files are checked for a change


class Bus:
    """Signed, replay-checked publish/subscribe and request/reply over one NATS connection."""

    def __init__(
        self,
        nc: NatsClient,
        keyring: Keyring,
        sender: str,
        options: BusOptions = BusOptions(),  # noqa: B008 (frozen, so safe to share)
    ) -> None:
        self.nc = nc
        self.keyring = keyring
        self.sender = sender
        self.options = options
        self.cluster = cluster = options.cluster
        self.subjects = Subjects(cluster)
        self.limits = options.limits or FrameLimits()
        self.stats = RejectionStats()
        self.seal_policy = SealPolicy(options.seal)
        """Sealed subjects (`seal=` patterns): bodies encrypted, plain frames refused."""
        self._seal_keys = SealKeys()  # one cache of derived keys for the sealer and openers
        self.sealer = Sealer(
            sender,
            keyring,
            limits=self.limits,
            compress_threshold=options.compress_threshold,
            sealed=self.seal_policy,
            seal_keys=self._seal_keys,
        )
        if options.identity is not None and options.identity.agent_id != sender:
            raise ConfigError(
                f"the identity is {options.identity.agent_id!r}'s, the bus sends as {sender!r}"
            )
        self.identity = options.identity
        """This process's signing key for identity-signed records, or None."""
        self.verifier = None if options.roster is None else IdentityVerifier(options.roster)
        """Checks identity-signed records against the roster; None when this process has
        no roster (identity signatures then neither required nor checked)."""
        self.attention_threshold = options.attention_threshold
        self.batcher: Batcher | None = None  # started with the connection (needs a loop)
        self._strategy = make_strategy(options.batching, TrafficSampler())
        self.rtos: PerKey[str, RtoEstimator] = PerKey(RtoEstimator)
        """Adaptive request timeouts, one estimator per destination subject family."""
        self.breakers: PerKey[str, CircuitBreaker] = PerKey(CircuitBreaker)
        """Circuit breakers of `request_with_retry`, one per destination subject."""
        self.handler_errors = 0
        self.on_reject: Callable[[str, str, str], None] | None = None
        self.sent = FamilyCounts()
        """Messages published, by subject family (`received()` is the other way)."""
        self.on_request: Callable[[str, float], None] | None = None
        """Called with (subject family, seconds) for each answered request (metrics)."""
        self._replies_in = 0
        self.claims = Claims(nc, cluster, holder=sender, skew_seconds=options.skew_seconds)
        """At most once across a queue group (`claim`), in the cluster's JetStream bucket."""
        self.streams = Streams(nc, self.sealer)
        """Durable streams of signed frames (JetStream): create, publish, read back."""
        self.stats.counts[DUPLICATE] = 0
        self.stats.counts[BAD_REPLY] = 0
        self._guard_args = (
            options.replay_window,
            int(options.skew_seconds * 1000),
            options.max_senders,
        )
        self._ratelog = RateLimitedLog(log)
        self._subs: list[Subscription] = []
        self._replies = ReplyInbox(self._opener(), self._note_rejection)
        self._inbox_sub: Any = None
        self._denials = DenialWatches()  # fail_on_denial
        self._files_task: asyncio.Task[None] | None = None
        self._closed = False

    # -- lifecycle --------------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        servers: str | list[str] = DEFAULT_NATS_URL,
        *,
        keyring: Keyring,
        sender: str | None = None,
        options: BusOptions = BusOptions(),  # noqa: B008 (frozen, so safe to share)
        connect_timeout: float = 2.0,
        connect_attempts: int = 2,
        security: ConnectionSecurity | None = None,
        **keywords: Any,
    ) -> Bus:
        """Connect and start the reply inbox. Reconnects forever once connected.

        `keywords` naming a `BusOptions` field (cluster=..., batching=...) override
        `options`; any other keyword goes to nats-py's connect.
        `security`: NATS credentials and TLS (amcp.security)."""
        options, nats_options = options.updated(keywords)
        urls = [servers] if isinstance(servers, str) else list(servers)
        sender = sender or f"{socket.gethostname()}-{os.getpid()}"
        bus = cls(NatsClient(), keyring, sender, options)
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
        refused = refusal(exc)
        if refused is not None:
            self._refused(*refused)
        elif not self._closed and self._inbox_sub is not None:  # quiet until first connected
            log.warning("nats error on %s: %s", self.sender, exc)

    def _refused(self, operation: str, subject: str) -> None:
        """The server refused a publish (or subscription) on `subject`: fail whoever awaits
        one there (fail_on_denial, requests); log it, rate-limited, when nobody does."""
        denied = PermissionDenied(operation, subject, self.nc.options.get("user"))
        waiting: list[asyncio.Future[Any]] = []
        if operation == "publish":
            waiting += self._denials.on(subject)
            waiting += self._replies.waiting_on(subject)
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
        self._inbox_sub = await self.nc.subscribe(self._replies.subject, cb=self._replies.on_reply)
        if self._strategy is not None:
            self.batcher = Batcher(self.sealer, self.nc.publish, self._strategy)
        roster = None if self.verifier is None else self.verifier.roster
        if self.keyring.path is not None or (roster is not None and roster.path is not None):
            self._files_task = asyncio.create_task(self._watch_files())

    async def close(self) -> None:
        """Drain: stop receiving, let in-flight handlers finish, flush and close."""
        if self._closed:
            return
        self._closed = True
        if self._files_task is not None:
            self._files_task.cancel()
        self._replies.fail_all(AmcpError("bus closed"))
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
        per message on the hottest path. When a span is current (amcp.tracing), its
        `traceparent` goes in the signed headers.
        """
        headers = with_trace(headers)
        self.sent.add(subject)
        batcher = self.batcher
        if batcher is not None:
            if not immediate and (attention is None or attention < self.attention_threshold):
                return batcher.submit(subject, body, kind, headers) or _queued()
            batcher.bypass(subject)  # counted: status shows what skipped the batches
            if batcher.holds(subject):
                return self._publish_after_batch(batcher, subject, body, kind, headers)
        return self.nc.publish(subject, self.sealer.seal(subject, body, kind, headers))

    def publish_group(
        self, subject: str, bodies: Sequence[Any], *, kind: str = "msg"
    ) -> Awaitable[None]:
        """Sign and publish `bodies` to `subject` now, together: one batch frame (one MAC,
        each message its own seq; halves of it past the frame limit), past the batches as
        `immediate` is. One body is an ordinary frame. For a caller that groups messages
        itself (amcp.groupcommit); encoding errors raise here. Each message carries its
        own span from `tracing.group_spans` (set by amcp.groupcommit), else the current one."""
        spans = group_spans.get()
        if spans is not None and len(spans) != len(bodies):
            spans = None  # not this group's
        if len(bodies) == 1 and spans is None:
            return self.publish(subject, bodies[0], kind=kind, immediate=True)
        if len(bodies) == 1:
            with use_span(spans[0]):  # sealed inside the call, so in the message's own span
                return self.publish(subject, bodies[0], kind=kind, immediate=True)
        if spans is None:
            carried = with_trace(None)
            items = [encode_item(kind, carried, body) for body in bodies]
        else:
            items = [
                encode_item(kind, None if s is None else s.carried, body)
                for s, body in zip(spans, bodies, strict=True)
            ]
        self.sent.add(subject, len(items))
        batcher = self.batcher
        if batcher is not None:
            batcher.bypass(subject)
            if batcher.holds(subject):
                return self._publish_frames_after_batch(batcher, subject, items)
        return self._publish_frames(subject, seal_frames(self.sealer, subject, items))

    async def _publish_frames(self, subject: str, frames: list[bytes]) -> None:
        for frame in frames:
            await self.nc.publish(subject, frame)

    async def _publish_frames_after_batch(
        self, batcher: Batcher, subject: str, items: list[tuple[bytes, bytes]]
    ) -> None:
        await batcher.flush_subject(subject)  # sealed after it: seqs in order
        await self._publish_frames(subject, seal_frames(self.sealer, subject, items))

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

    def fail_on_denial(self, subject: str, fut: asyncio.Future[Any]) -> Iterator[None]:
        """While open, the server refusing a publish to `subject` for this user's
        permissions fails `fut` with PermissionDenied (e.g. a proposal awaiting ballots)."""
        return self._denials.watch(subject, fut)

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
        sub = Subscription(
            subject,
            queue,
            self._opener(),
            handler,
            backlog,
            on_reject=self._note_rejection,
            on_handler_error=self._handler_failed,
        )
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
        self._note_rejection(FrameRejected(DUPLICATE, detail), msg.subject, False)
        return False

    def refuse_reply(self, msg: Message) -> None:
        """A request whose reply-to is not an inbox gets no reply: counted as `bad_reply`."""
        self.stats.counts[BAD_REPLY] += 1
        detail = f"{msg.sender} asked for a reply on {msg.reply_to!r}, not an inbox"
        self._note_rejection(FrameRejected(BAD_REPLY, detail), msg.subject, False)

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
        reply, fut = self._replies.expect(subject, wait)
        loop = asyncio.get_running_loop()
        try:
            headers = with_trace(headers)
            all_headers = {REPLY_HEADER: reply, **headers} if headers else {REPLY_HEADER: reply}
            if self.batcher is not None and self.batcher.holds(subject):
                await self.batcher.flush_subject(subject)  # keep the subject's order
            frame = self.sealer.seal(subject, body, kind, all_headers)
            started = loop.time()
            await self.nc.publish(subject, frame, reply=reply)
            self.sent.add(subject)
            msg = await fut
            self._replies_in += 1
        except RequestTimeout:
            if timeout is None:
                rto.backoff()
            raise
        finally:
            self._replies.forget(reply)
        elapsed = loop.time() - started
        rto.observe(elapsed)
        if self.on_request is not None:
            self.on_request(subject_family(subject), elapsed)
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
        return await retry_request(
            lambda: self.request(subject, body, timeout=timeout, kind=kind, headers=headers),
            subject,
            self.breakers.get(subject),
            backoff,
            retry_no_responders=retry_no_responders,
        )

    def traffic(self) -> list[FamilyTraffic]:
        """What the traffic analyser makes of this bus's batched publishing, per subject
        family (empty unless batching is adaptive)."""
        return [] if self.batcher is None else self.batcher.traffic()

    def received(self) -> dict[str, int]:
        """Messages delivered to this bus's subscriptions and replies to its requests, by
        subject family: summed from the counts each keeps, so receiving pays nothing more."""
        counts = {INBOX_FAMILY: self._replies_in} if self._replies_in else {}
        for sub in self._subs:
            family = family_of(sub.subject)
            counts[family] = counts.get(family, 0) + sub.delivered
        return counts

    def batching_policies(self) -> dict[str, BatchPolicy]:
        """The batching policy in force per subject family (empty with batching off): what
        an adaptive strategy last derived, or a fixed one's policy for each family sent on."""
        batcher = self.batcher
        if batcher is None:
            return {}
        if isinstance(batcher.strategy, AdaptiveBatching):
            return {t.family: t.policy for t in batcher.policies()}
        families = (f for f in self.sent.counts if f != INBOX_FAMILY)
        return {f: batcher.strategy.policy_for(f) for f in families}

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

    # -- internals --------------------------------------------------------------------

    def _opener(self) -> Opener:
        window, skew_ms, max_senders = self._guard_args
        return Opener(
            self.keyring,
            owner=self,
            limits=self.limits,
            stats=self.stats,
            sealed=self.seal_policy,
            seal_keys=self._seal_keys,
            guard=live_guard(window, skew_ms, max_senders, time.time()),  # see live_guard
        )

    def _handler_failed(self, subject: str, sender: str) -> None:
        self.handler_errors += 1
        self._ratelog.log(
            logging.ERROR,
            f"handler:{subject}",
            "handler for %s raised on a message from %s",
            subject,
            sender,
            exc_info=True,
        )

    def _note_rejection(self, rejected: FrameRejected, subject: str, in_flight: bool) -> None:
        # counted either way; one sent while this receiver was starting is no news (its own
        # rate key: it must not fold away a warning about a real one)
        self._ratelog.log(
            logging.DEBUG if in_flight else logging.WARNING,
            f"{rejected.reason}:in_flight" if in_flight else rejected.reason,
            "rejected frame on %s: %s%s",
            subject,
            rejected,
            " (stamped as this receiver started: in flight then, or replayed)" if in_flight else "",
        )
        if self.on_reject is not None:
            self.on_reject(rejected.reason, subject, rejected.detail)

    async def _watch_files(self, interval: float = ROSTER_POLL_S) -> None:
        """Re-read the keyring and the roster when another process replaces them (a key
        rotation, a revocation), keeping what is in force if a new file is bad."""
        while True:
            await asyncio.sleep(interval)
            self.reload_files()

    def reload_files(self) -> None:
        """One check of the keyring and roster files (what the watcher does each
        ROSTER_POLL_S seconds)."""
        try:
            if self.keyring.path is not None and self.keyring.reload_if_changed():
                log.info(
                    "keyring reloaded from %s: %d keys", self.keyring.path, len(self.keyring.keys)
                )
        except AmcpError as exc:
            log.error("keyring reload failed, keeping the old keys: %s", exc)
        if self.verifier is None:
            return
        roster = self.verifier.roster
        try:
            if roster.path is not None and roster.reload_if_changed():
                revoked = sum(e.revoked for e in roster.entries)
                log.info(
                    "roster reloaded from %s: %d identities, %d revoked",
                    roster.path,
                    len(roster.entries),
                    revoked,
                )
        except AmcpError as exc:
            log.error("roster reload failed, keeping the identities in force: %s", exc)


async def _queued() -> None:
    """What `publish` returns for a message that joined a batch: nothing left to wait for."""
