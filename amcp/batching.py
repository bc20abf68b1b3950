"""The bus side of batching: per-subject batches under a netopt strategy, one flusher task.

`Batcher.submit` encodes a message at once (so a bad body raises at the caller), records
it in the traffic sampler of its subject family and queues it in its subject's
`BatchAccumulator`. A batch that fills up (count or bytes) is sent by the publisher
itself; one that must wait for its linger deadline, or that natural batching sends as soon
as the loop comes round, is sent by the flusher task. Under an adaptive strategy, a
message on a subject where batching gathers nothing (a lone message a loop turn, a family
too slow to linger for) skips the accumulator and is sent by the publisher at once, as
with batching off. A tuning task re-derives adaptive policies on the strategy's schedule.
`close()` sends everything still queued.

Ordering: a batch is taken out of its accumulator, sealed and handed to nats-py with no
await in between, so the frames of one subject leave in the order their messages were
published.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any, Literal

from amcp.envelope import MAC_SIZE
from amcp.errors import AmcpError, ConfigError, EncodeError
from amcp.framebody import Item, encode_item
from amcp.message import INBOX_PREFIX
from amcp.protocol import Sealer
from amcp.ratelog import RateLimitedLog
from amcp.subjects import validate_subject
from netopt import (
    AdaptiveBatching,
    Batch,
    BatchAccumulator,
    BatchingStrategy,
    BatchPolicy,
    FamilyTraffic,
    FixedBatching,
    FlushReason,
    PolicyLimits,
    TrafficSampler,
    describe_traffic,
)

__all__ = [
    "BUS_LIMITS",
    "NATURAL_MAX_MESSAGES",
    "Batcher",
    "BatchingMode",
    "make_strategy",
    "seal_frames",
    "subject_family",
]

log = logging.getLogger("amcp.batching")

BatchingMode = Literal["off", "adaptive"] | BatchPolicy | BatchingStrategy
"""How a bus batches: "off", "adaptive" (the default), one fixed `BatchPolicy` for every
subject, or any `BatchingStrategy` (an `AdaptiveBatching` with your own limits)."""
Send = Callable[[str, bytes], Awaitable[None]]

BUS_LIMITS = PolicyLimits(max_messages=32, max_linger_seconds=0.0005)
"""The adaptive bus's bounds: a batch lingers 0.5 ms at most, only where that gathers 4
messages (8,000 msg/s and up), and holds 32 at most: 16-32 a frame already spread the frame
cost thin, and a longer wait only adds latency (the measurements: docs/NETOPT.md, "The
bus's budget is 0.5 ms")."""
NATURAL_MAX_MESSAGES = 64
"""Without linger, a batch may hold this many: a tight loop fills it without waiting. 64,
not 256: by 64 the frame cost is amortised, and bigger frames arrive in lumps that raise
the p99 (docs/NETOPT.md, "Natural batch size on the bus, and why not 256")."""
FAMILY_TOKENS = 2
_NAMESPACE = "amcp"
_MAX_LANES = 4096
# Envelope bytes besides kind, headers and body, at their largest (DESIGN: names <= 128).
_ENVELOPE_OVERHEAD = 1 + 1 + 1 + 18 + 131 + 9 + 9 + 9 + 131 + MAC_SIZE


def subject_family(subject: str) -> str:
    """The traffic family of a subject: its first two tokens ("tasks.s1.result" ->
    "tasks.s1"), after the "amcp.<cluster>" namespace for amcp's own subjects
    ("amcp.prod.ctx.delta.x" -> "amcp.prod.ctx.delta"), which would otherwise lump
    every system area into one family."""
    tokens = subject.split(".", FAMILY_TOKENS + 2)
    keep = FAMILY_TOKENS + 2 if tokens[0] == _NAMESPACE else FAMILY_TOKENS
    return ".".join(tokens[:keep])


def make_strategy(mode: BatchingMode, sampler: TrafficSampler) -> BatchingStrategy | None:
    """The strategy for a `BatchingMode` (None for "off"); "adaptive" analyses `sampler`."""
    if mode == "off":
        return None
    if mode == "adaptive":
        return AdaptiveBatching(sampler, limits=BUS_LIMITS)
    if isinstance(mode, BatchPolicy):
        return FixedBatching(mode)
    if isinstance(mode, str) or not hasattr(mode, "policy_for"):
        raise ConfigError(
            f"batching must be 'off', 'adaptive', a BatchPolicy or a strategy, got {mode!r}"
        )
    return mode


def seal_frames(sealer: Sealer, subject: str, items: Sequence[Item]) -> list[bytes]:
    """Frames carrying `items` in order: one batch frame, or halves of it when the frame
    limit cannot hold them all. EncodeError for an item too big for a frame of its own."""
    try:
        return [sealer.seal_items(subject, items)]
    except EncodeError:
        if len(items) == 1:
            raise
        half = len(items) // 2
        return seal_frames(sealer, subject, items[:half]) + seal_frames(
            sealer, subject, items[half:]
        )


_SELF_CLOSED = (FlushReason.COUNT, FlushReason.BYTES, FlushReason.DEADLINE)
_PROBE_EVERY = 16  # a lingering or lone lane takes one natural batch in this many, to re-measure
_ALONE_BELOW = 1.5  # natural batches averaging fewer messages than this: send alone at once
_NATURAL_WEIGHT = 0.25  # of the newest natural batch size in the moving average


@functools.lru_cache(maxsize=64)
def _natural(policy: BatchPolicy, max_messages: int | None = None) -> BatchPolicy:
    """`policy` without linger; with `max_messages`, that count limit instead."""
    return replace(policy, linger_seconds=0.0, max_messages=max_messages or policy.max_messages)


class _Lane:
    """Per-subject state: its family, when it last saw a message, its open batch, the
    size natural batching gathers on it (a moving average, 0 until measured), and the
    natural form of the family policy last seen (derived once per policy, not per batch)."""

    __slots__ = ("acc", "alone", "family", "last_at", "lingered", "nat_of", "nat_policy", "natural")

    def __init__(self, family: str) -> None:
        self.family = family
        self.last_at = -math.inf
        self.acc: BatchAccumulator[Item] | None = None
        self.natural = 0.0
        self.lingered = 0
        self.alone = 0
        self.nat_of: BatchPolicy | None = None
        self.nat_policy: BatchPolicy | None = None

    def observe(self, policy: BatchPolicy, batch: Batch[Item]) -> None:
        """Under no linger, the size of a batch that closed by itself (not drained or cut
        short by a policy change or a bypass) is what natural batching gathers here."""
        if not policy.linger_seconds and batch.reason in _SELF_CLOSED:
            self.natural += _NATURAL_WEIGHT * (len(batch.items) - self.natural)


class Batcher:
    """Coalesces published messages per subject into signed batch frames."""

    def __init__(self, sealer: Sealer, send: Send, strategy: BatchingStrategy) -> None:
        """Start batching for `sealer`'s sender; `send(subject, frame)` publishes a frame.
        An `AdaptiveBatching` strategy is fed from its own sampler and re-tuned on its own
        interval; any other strategy is used as it is. Needs a running event loop."""
        self.sealer = sealer
        self.strategy = strategy
        self.limits = sealer.limits
        self._adaptive = adaptive = isinstance(strategy, AdaptiveBatching)
        self.sampler: TrafficSampler | None = None
        if adaptive:
            self.sampler = strategy.sampler
            # Linger only where natural batching gathers fewer messages a frame than this.
            self._min_gain = strategy.limits.min_gain
            self._natural_max = min(NATURAL_MAX_MESSAGES, self.limits.max_batch)
        self.frames = 0
        self.messages = 0
        self.flushes: Counter[str] = Counter()
        self.immediate: Counter[str] = Counter()
        """Messages sent at once past the batches (immediate, high-attention), by family."""
        self.send_errors = 0
        self.tune_seconds_used = 0.0  # wall time spent re-deriving policies
        self._send = send
        self._loop = asyncio.get_running_loop()
        self._clock = self._loop.time
        self._lanes: dict[str, _Lane] = {}
        self._open: dict[str, _Lane] = {}  # lanes with queued messages
        self._max_item = self.limits.max_frame_bytes - _ENVELOPE_OVERHEAD
        self._wake = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._ratelog = RateLimitedLog(log)
        self._closed = False
        self._flusher = asyncio.create_task(self._run_flusher(), name="amcp-batch-flusher")
        self._tuner = (
            asyncio.create_task(self._run_tuner(strategy.interval_seconds), name="amcp-tuner")
            if adaptive
            else None
        )

    # -- publishing -------------------------------------------------------------------

    def submit(
        self, subject: str, body: Any, kind: str, headers: dict[str, str] | None
    ) -> Awaitable[None] | None:
        """Queue one message. Returns an awaitable if batches filled up and must be sent
        now (the publisher sends them: backpressure), else None. Raises EncodeError or
        ConfigError at once for a message that could never be sent."""
        if self._closed:
            raise AmcpError("the bus is closed; nothing more can be published")
        now = self._clock()
        lane = self._lanes.get(subject)
        if lane is None:
            lane = self._new_lane(subject)
        acc = lane.acc
        policy = None if acc is not None else self._policy(lane, now)
        if acc is None and policy is None:
            return self._send_alone(subject, lane, body, kind, headers, now)
        item = encode_item(kind, headers, body)
        nbytes = len(item[0]) + len(item[1])
        if nbytes > self._max_item:
            raise EncodeError(
                f"message of {nbytes} bytes exceeds the {self.limits.max_frame_bytes}-byte "
                "frame limit"
            )
        if acc is None:
            assert policy is not None
            acc = lane.acc = BatchAccumulator(policy)
            self._open[subject] = lane
            self._arm(now + policy.linger_seconds, now)
        lane.last_at = now
        full = acc.add(item, nbytes, now)
        if not full:
            return None
        if not len(acc):
            lane.acc = None
            del self._open[subject]
        return self._send_all(subject, self._frames(subject, lane, acc.policy, full))

    def bypass(self, subject: str) -> None:
        """Count a message the bus sends at once, in a frame of its own. Replies count as
        one family (each caller has its own inbox), and families past the lanes' bound as
        "other", so the counter stays bounded."""
        if subject.startswith(INBOX_PREFIX):
            family = "_INBOX"
        else:
            lane = self._lanes.get(subject)
            family = lane.family if lane else subject_family(subject)
            if family not in self.immediate and len(self.immediate) >= _MAX_LANES:
                family = "other"
        self.immediate[family] += 1

    def _new_lane(self, subject: str) -> _Lane:
        validate_subject(subject)
        if len(self._lanes) >= _MAX_LANES:
            # Bounded: forget idle lanes (a forgotten lane only loses its last_at).
            for name in [s for s, lane in self._lanes.items() if lane.acc is None]:
                del self._lanes[name]
        lane = self._lanes[subject] = _Lane(subject_family(subject))
        return lane

    def _policy(self, lane: _Lane, now: float) -> BatchPolicy | None:
        """The family's policy for a new batch on `lane`, with no linger when lingering
        cannot pay: for a message with no predecessor within the linger (nothing suggests
        company is coming), and, under an adaptive strategy, where natural batching
        already gathers `min_gain` messages a frame (the publisher sends in groups, so a
        wait would add latency and save next to nothing). A lingering lane takes a natural
        batch now and then to keep that measure current.

        None (adaptive only): send the message alone, now. Where the family's policy does
        not linger and natural batching gathers about one message a frame on this lane
        (agents' heartbeats, deltas), a batch would only cost a flusher turn and a loop
        turn of latency; one message in `_PROBE_EVERY` still opens a natural batch, so a
        lane whose publisher starts sending in groups is noticed."""
        policy = self.strategy.policy_for(lane.family)
        if not self._adaptive:  # as configured, within the limits
            if policy.max_messages > self.limits.max_batch:
                policy = replace(policy, max_messages=self.limits.max_batch)
            if policy.linger_seconds and now - lane.last_at > policy.linger_seconds:
                return _natural(policy)
            return policy
        if policy is not lane.nat_of:
            lane.nat_of, lane.nat_policy = policy, _natural(policy, self._natural_max)
        natural = lane.nat_policy
        if not policy.linger_seconds:
            if lane.natural < _ALONE_BELOW:
                lane.alone += 1
                if lane.alone % _PROBE_EVERY:
                    return None
            return natural
        if now - lane.last_at > policy.linger_seconds or lane.natural >= self._min_gain:
            return natural
        lane.lingered += 1
        return natural if lane.lingered % _PROBE_EVERY == 0 else policy

    def _send_alone(
        self,
        subject: str,
        lane: _Lane,
        body: Any,
        kind: str,
        headers: dict[str, str] | None,
        now: float,
    ) -> Awaitable[None]:
        """Seal one message in a frame of its own, as the bus does with batching off (the
        compiled sealer: no batch item is built), and return its send for the publisher to
        await. Raises EncodeError for a message that cannot be sent, counting nothing. The
        sampler counts the frame's bytes (a batch's count its items')."""
        assert self.sampler is not None  # adaptive only
        frame = self.sealer.seal(subject, body, kind, headers)
        lane.last_at = now
        self.sampler.record(lane.family, len(frame), now)
        self.flushes[FlushReason.ALONE] += 1
        self.frames += 1
        self.messages += 1
        return self._send(subject, frame)

    def _frames(
        self, subject: str, lane: _Lane, policy: BatchPolicy, batches: list[Batch[Item]]
    ) -> list[bytes]:
        """Account for batches taken out of `lane` and seal them. The sampler counts a
        batch at once, when it closes: one call per frame rather than per message, and a
        batch spans at most its linger, far less than a sampler bin."""
        frames: list[bytes] = []
        for batch in batches:
            if self.sampler is not None:
                self.sampler.record(lane.family, batch.nbytes, batch.opened_at, len(batch.items))
            lane.observe(policy, batch)
            self.flushes[batch.reason] += 1
            frames += self._seal(subject, batch.items)
        return frames

    def _seal(self, subject: str, items: tuple[Item, ...]) -> list[bytes]:
        frames = seal_frames(self.sealer, subject, items)
        self.frames += len(frames)
        self.messages += len(items)
        return frames

    async def _send_all(self, subject: str, frames: list[bytes]) -> None:
        for frame in frames:
            await self._send(subject, frame)

    async def _send_off_path(self, subject: str, lane: _Lane, batches: list[Batch[Item]]) -> None:
        """Send batches taken out of `lane` off the publish path: a failure is counted
        and logged (nobody is awaiting it), and the other batches still go."""
        assert lane.acc is not None
        policy = lane.acc.policy
        lane.acc = None
        if self._open.get(subject) is lane:
            del self._open[subject]
        try:
            await self._send_all(subject, self._frames(subject, lane, policy, batches))
        except Exception:
            self.send_errors += 1
            self._ratelog.log(
                logging.ERROR, "send", "sending a batch on %s failed", subject, exc_info=True
            )

    # -- flushing ---------------------------------------------------------------------

    def _arm(self, deadline: float, now: float | None = None) -> None:
        """Make the flusher run at `deadline` (at the next loop turn if it has passed)."""
        if deadline <= (self._clock() if now is None else now):
            self._wake.set()
        elif deadline < self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = deadline
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        self._wake.set()

    async def _run_flusher(self) -> None:
        while not self._closed:
            await self._wake.wait()
            self._wake.clear()
            await self._flush(due_only=True)

    async def _flush(self, *, due_only: bool) -> None:
        """Send the batches whose deadline has come (or every batch), then re-arm."""
        now = self._clock()
        for subject in list(self._open):
            lane = self._open.get(subject)
            if lane is None or lane.acc is None:
                continue
            batches = lane.acc.due(now) if due_only else lane.acc.drain()
            if batches:
                await self._send_off_path(subject, lane, batches)
        deadlines = [lane.acc.next_deadline() for lane in self._open.values() if lane.acc]
        if deadlines:
            self._arm(min(d for d in deadlines if d is not None))

    async def flush(self) -> None:
        """Send every queued message now, whatever its linger."""
        await self._flush(due_only=False)

    def holds(self, subject: str) -> bool:
        """Whether messages to `subject` are waiting in an open batch."""
        return subject in self._open

    async def flush_subject(self, subject: str) -> None:
        """Send `subject`'s open batch now (before a message that bypasses batching, so
        the subject's messages stay in order)."""
        lane = self._open.get(subject)
        if lane is not None and lane.acc is not None:
            await self._send_off_path(subject, lane, lane.acc.drain())

    async def close(self) -> None:
        """Stop the tasks and send everything still queued: nothing is left unsent."""
        if self._closed:
            return
        self._closed = True
        if self._tuner is not None:
            self._tuner.cancel()  # asleep, or sending a batch it took: appended already
            with contextlib.suppress(asyncio.CancelledError):
                await self._tuner
        self._wake.set()  # the flusher finishes the pass it is in, then stops
        await self._flusher
        if self._timer is not None:
            self._timer.cancel()
        await self.flush()

    def traffic(self) -> list[FamilyTraffic]:
        """The analyser's view of each family this batcher sampled (adaptive only)."""
        if self.sampler is None or not isinstance(self.strategy, AdaptiveBatching):
            return []
        held = self.strategy.in_force()  # the class and policy in force, not one window's
        out = []
        for t in describe_traffic(self.sampler, self._clock(), self.strategy.limits):
            policy, analysis = held.get(t.family, (t.policy, None))
            cls = t.traffic_class if analysis is None else analysis.traffic_class
            out.append(replace(t, traffic_class=cls, policy=policy))
        return out

    def policies(self) -> list[FamilyTraffic]:
        """The policy in force per evaluated family, as the strategy last derived it (no
        analysis is re-run: cheap enough for every heartbeat); a family too slow to linger
        for that was never analysed has no class. Empty unless adaptive."""
        if not isinstance(self.strategy, AdaptiveBatching) or self.sampler is None:
            return []
        now, bin_seconds = self._clock(), self.sampler.bin_seconds
        return [
            FamilyTraffic.unclassified(f, self.sampler.series(f, now), 0, bin_seconds, policy)
            if analysis is None
            else FamilyTraffic.of(f, analysis, policy)
            for f, (policy, analysis) in self.strategy.in_force().items()
        ]

    @property
    def queued(self) -> int:
        """Messages waiting in open batches."""
        return sum(len(lane.acc) for lane in self._open.values() if lane.acc)

    # -- tuning -----------------------------------------------------------------------

    async def _run_tuner(self, interval: float) -> None:
        # The analyser imports scipy.signal on first use, ~0.9 s of CPU during which the
        # loop runs at a third of its speed: that is done in a worker thread, and only once
        # a family is busy enough that its class could make it linger. Until then every
        # policy is natural batching, decided without it (an agent's traffic never pays).
        strategy = self.strategy
        assert isinstance(strategy, AdaptiveBatching)  # the only one with a tuner
        spectral = False
        while True:
            await asyncio.sleep(interval)
            try:
                if not spectral and strategy.needs_spectrum(self._clock()):
                    await self._loop.run_in_executor(None, importlib.import_module, "scipy.signal")
                    spectral = True
                await self.tune(spectral=spectral)
            except Exception:
                self._ratelog.log(
                    logging.ERROR, "tune", "re-deriving policies failed", exc_info=True
                )

    async def tune(self, *, spectral: bool = True) -> None:
        """Re-derive policies if due (`spectral`: with the analyser, see
        `AdaptiveBatching.maybe_update`); open batches of a family whose policy changed are
        sent at once (closing a batch early never delays anything)."""
        started = time.perf_counter()
        changed = self.strategy.maybe_update(self._clock(), spectral=spectral)
        self.tune_seconds_used += time.perf_counter() - started
        if not changed:
            return
        for subject in list(self._open):
            lane = self._open.get(subject)
            if lane is None or lane.acc is None or lane.family not in changed:
                continue
            batches = lane.acc.set_policy(changed[lane.family])
            if batches:
                await self._send_off_path(subject, lane, batches)
