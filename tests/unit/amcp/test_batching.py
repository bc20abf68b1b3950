"""The bus-side Batcher with an in-memory send: coalescing, flush triggers, the natural
batching floor, policy changes, close; and subject families."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
import scipy.signal  # noqa: F401 - loaded up front, as the bus's tuner does in a thread

from amcp import Keyring
from amcp.batching import BUS_LIMITS, Batcher, make_strategy, subject_family
from amcp.envelope import FrameLimits
from amcp.errors import ConfigError, EncodeError
from amcp.protocol import Opener, Sealer
from netopt import (
    AdaptiveBatching,
    BatchPolicy,
    FixedBatching,
    PolicyLimits,
    TrafficSampler,
)
from tests.support.waiting import wait_until


class Wire:
    """Collects sent frames and opens them like a subscriber would."""

    def __init__(self, ring: Keyring) -> None:
        self.frames: list[tuple[str, bytes]] = []
        self.sizes: list[int] = []  # messages per frame
        self.received: list[tuple[str, object]] = []
        self.opener = Opener(ring)

    async def send(self, subject: str, frame: bytes) -> None:
        self.frames.append((subject, frame))
        messages = self.opener.open_all(subject, frame)
        self.sizes.append(len(messages))
        self.received += [(subject, m.body) for m in messages]

    def messages(self) -> list[tuple[str, object]]:
        return self.received


async def started(ring, policy: BatchPolicy, limits: FrameLimits | None = None):
    wire = Wire(ring)
    batcher = Batcher(Sealer("alice", ring, limits=limits), wire.send, FixedBatching(policy))
    return wire, batcher


async def test_messages_queued_in_one_loop_turn_share_a_frame(ring):
    wire, batcher = await started(ring, BatchPolicy(256, 1 << 20, 0.0))
    for i in range(10):
        assert batcher.submit("a.b", i, "msg", None) is None
    assert wire.frames == []  # nothing leaves before the loop comes round
    await wait_until(lambda: wire.frames, 2, what="the batch")
    assert len(wire.frames) == 1 and wire.messages() == [("a.b", i) for i in range(10)]
    await batcher.close()


async def test_a_full_batch_is_sent_by_the_publisher(ring):
    wire, batcher = await started(ring, BatchPolicy(4, 1 << 20, 60.0))
    pending = [batcher.submit("a.b", i, "msg", None) for i in range(10)]
    sends = [p for p in pending if p is not None]
    assert len(sends) == 2  # at the 4th and 8th message
    for send in sends:
        await send
    assert wire.sizes == [4, 4]
    assert batcher.queued == 2
    await batcher.close()  # nothing is left unsent
    assert [b for _, b in wire.messages()] == list(range(10))
    assert batcher.flushes == {"count": 2, "drain": 1}


async def test_bytes_limit_closes_a_batch(ring):
    wire, batcher = await started(ring, BatchPolicy(1000, 300, 60.0))
    for _i in range(10):
        send = batcher.submit("a.b", "x" * 100, "msg", None)
        if send is not None:
            await send
    assert batcher.flushes["bytes"] >= 3
    await batcher.close()
    assert len(wire.messages()) == 10


async def test_a_lone_message_does_not_wait_for_the_linger(ring):
    """Natural batching floor: a message with no predecessor within the linger goes at
    once, even under a 30 s linger; one that follows closely waits for company."""
    wire, batcher = await started(ring, BatchPolicy(100, 1 << 20, 30.0))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    batcher.submit("a.b", "lone", "msg", None)
    await wait_until(lambda: wire.frames, 2, what="the lone message")
    assert loop.time() - t0 < 1.0
    batcher.submit("a.b", "follows", "msg", None)  # 'lone' was just now: this one lingers
    await asyncio.sleep(0.05)
    assert len(wire.frames) == 1 and batcher.queued == 1
    await batcher.flush()
    assert wire.messages() == [("a.b", "lone"), ("a.b", "follows")]
    await batcher.close()


async def test_linger_deadline_sends_the_batch(ring):
    wire, batcher = await started(ring, BatchPolicy(100, 1 << 20, 0.2))
    loop = asyncio.get_running_loop()
    batcher.submit("a.b", 0, "msg", None)
    await wait_until(lambda: wire.frames, 2, what="first message")
    t0 = loop.time()
    for i in range(1, 4):
        batcher.submit("a.b", i, "msg", None)
    await wait_until(lambda: len(wire.frames) == 2, 3, what="the lingering batch")
    assert loop.time() - t0 >= 0.19
    assert batcher.flushes["deadline"] == 2
    assert [b for _, b in wire.messages()] == [0, 1, 2, 3]
    await batcher.close()


async def test_subjects_batch_separately_and_flush_subject_keeps_order(ring):
    wire, batcher = await started(ring, BatchPolicy(100, 1 << 20, 30.0))
    batcher.submit("a.b", "warm-up", "msg", None)
    await batcher.flush()
    batcher.submit("a.b", 1, "msg", None)
    batcher.submit("c.d", 2, "msg", None)
    assert batcher.holds("a.b") and batcher.holds("c.d")
    await batcher.flush_subject("a.b")
    assert not batcher.holds("a.b") and batcher.holds("c.d")
    assert wire.messages()[-1] == ("a.b", 1)
    await batcher.close()
    assert wire.messages()[-1] == ("c.d", 2)


async def test_bad_messages_raise_at_submit_and_nothing_is_queued(ring):
    _wire, batcher = await started(ring, BatchPolicy(100, 1 << 20, 0.0), FrameLimits(4096))
    with pytest.raises(EncodeError):
        batcher.submit("a.b", object(), "msg", None)
    with pytest.raises(EncodeError, match="frame limit"):
        batcher.submit("a.b", "x" * 5000, "msg", None)
    with pytest.raises(ConfigError):
        batcher.submit("a b", 1, "msg", None)
    assert batcher.queued == 0
    await batcher.close()


async def test_a_batch_bigger_than_a_frame_is_split(ring):
    wire, batcher = await started(ring, BatchPolicy(100, 1 << 20, 30.0), FrameLimits(4096))
    for i in range(20):
        batcher.submit("a.b", "y" * 500 + str(i), "msg", None)
    await batcher.close()
    assert len(wire.frames) > 2 and all(len(f) <= 4096 for _, f in wire.frames)
    assert [b[-2:].lstrip("y") for _, b in wire.messages()] == [str(i) for i in range(20)]


async def test_adaptive_policy_from_the_sampler_and_change_sends_open_batches(ring):
    sampler = TrafficSampler(bin_seconds=0.01, bins=64)
    # A long interval: the tuner task stays asleep and the test re-tunes by hand.
    strategy = AdaptiveBatching(sampler, interval_seconds=60.0, min_bins=16)
    wire = Wire(ring)
    batcher = Batcher(Sealer("alice", ring), wire.send, strategy)
    assert batcher.sampler is sampler
    loop = asyncio.get_running_loop()
    start, sent = loop.time(), 0
    while (elapsed := loop.time() - start) < 0.4:  # 5 000 msg/s on a schedule: steady
        while sent < 5000 * elapsed:
            send = batcher.submit("fast.lane", 1, "msg", None)
            if send is not None:
                await send
            sent += 1
        await asyncio.sleep(0.001)
    batcher.submit("fast.lane", 1, "msg", None)  # an open batch under the old policy
    assert batcher.holds("fast.lane")
    await batcher.tune()
    policy = strategy.policy_for("fast.lane")
    assert policy.linger_seconds > 0 and policy.max_messages > 1
    assert not batcher.holds("fast.lane") and batcher.flushes["policy"] == 1
    [traffic] = batcher.traffic()
    assert traffic.family == "fast.lane" and traffic.rate > 1000
    assert traffic.traffic_class is not None
    assert batcher.tune_seconds_used > 0
    await batcher.close()
    assert batcher.queued == 0 and len(wire.messages()) == batcher.messages


async def test_adaptive_lingers_only_where_natural_batching_gathers_little(ring):
    """Both families are fast enough for the analyser to choose lingering; only the one
    whose messages come one per loop turn gets it. The other already leaves in groups, so
    a wait would only add latency."""
    sampler = TrafficSampler(bin_seconds=0.01, bins=64)
    # A 20 ms budget: lingering would gather many ticks' worth, natural batching one.
    limits = PolicyLimits(max_linger_seconds=0.02)
    strategy = AdaptiveBatching(sampler, interval_seconds=60.0, min_bins=16, limits=limits)
    wire = Wire(ring)
    batcher = Batcher(Sealer("alice", ring), wire.send, strategy)
    loop = asyncio.get_running_loop()

    async def traffic(seconds: float) -> None:
        end = loop.time() + seconds
        while loop.time() < end:  # per 1 ms tick: 10 grouped, 5 spread over loop turns
            for subject, n, turns in (("grouped.x", 10, False), ("spread.y", 5, True)):
                for _ in range(n):
                    send = batcher.submit(subject, 1, "msg", None)
                    if send is not None:
                        await send
                    if turns:
                        await asyncio.sleep(0)
            await asyncio.sleep(0.001)

    await traffic(0.3)
    await batcher.tune()
    for family in ("grouped.x", "spread.y"):
        assert strategy.policy_for(family).linger_seconds > 0
    await batcher.flush()
    first = len(wire.frames)
    await traffic(0.3)
    await batcher.flush()
    per_frame: dict[str, list[int]] = {"grouped.x": [], "spread.y": []}
    for (subject, _), size in zip(wire.frames[first:], wire.sizes[first:], strict=True):
        per_frame[subject].append(size)
    grouped, spread = (sum(v) / len(v) for v in per_frame.values())
    assert 5 <= grouped <= 12  # natural: one frame per tick's group
    assert spread > 20  # lingering gathers several ticks' worth
    await batcher.close()


async def test_adaptive_sends_a_lone_message_at_once_and_groups_still_share_frames(ring):
    """Where natural batching gathers one message a frame (a message a loop turn, a family
    too slow to linger for), adaptive batching sends each message when the publisher awaits
    it, as with batching off: no flusher turn. A lane whose publisher sends groups is
    noticed by the natural batch it probes with now and then, and batches from then on."""
    sampler = TrafficSampler(bin_seconds=0.01, bins=64)
    strategy = AdaptiveBatching(sampler, interval_seconds=60.0, min_bins=16)
    wire = Wire(ring)
    batcher = Batcher(Sealer("alice", ring), wire.send, strategy)
    for i in range(15):
        send = batcher.submit("slow.lane", i, "msg", None)
        assert send is not None and not batcher.holds("slow.lane")
        await send  # the send itself: no loop turn in between
        assert len(wire.frames) == i + 1 and wire.sizes[-1] == 1
    assert batcher.flushes["alone"] == 15 and batcher.frames == batcher.messages == 15
    with pytest.raises(EncodeError):  # raised at once, as with batching off; nothing sent
        batcher.submit("slow.lane", object(), "msg", None)
    with pytest.raises(EncodeError, match="limit"):
        batcher.submit("slow.lane", "x" * (2 << 20), "msg", None)
    assert len(wire.frames) == batcher.frames == 15
    loop = asyncio.get_running_loop()
    assert sampler.series("slow.lane", loop.time() + 0.02).sum() == 15  # still sampled

    async def tick(subject: str, n: int) -> None:
        for i in range(n):
            send = batcher.submit(subject, i, "msg", None)
            if send is not None:
                await send
        await wait_until(lambda: not batcher.holds(subject), 2, what="the natural batch")

    for _ in range(3):
        await tick("group.lane", 40)
    first = len(wire.frames)
    await tick("group.lane", 40)
    assert wire.sizes[first:] == [40]  # one frame for the group
    assert len(wire.messages()) == batcher.messages == 15 + 4 * 40
    assert [b for s, b in wire.messages() if s == "slow.lane"] == list(range(15))
    await batcher.close()


TUNER_SCRIPT = """
import asyncio, sys
from amcp import Keyring
from amcp.batching import Batcher
from amcp.protocol import Sealer
from netopt import AdaptiveBatching, TrafficSampler

async def main():
    sampler = TrafficSampler(bin_seconds=0.01, bins=64)
    strategy = AdaptiveBatching(sampler, interval_seconds=0.05, min_bins=16)
    async def send(subject, frame):
        pass
    batcher = Batcher(Sealer("alice", Keyring.generate()), send, strategy)
    async def publish(subject):
        sending = batcher.submit(subject, 1, "msg", None)
        if sending is not None:
            await sending
    loop = asyncio.get_running_loop()
    end = loop.time() + 0.6
    while loop.time() < end:  # 200 msg/s: far too slow to linger for
        await publish("slow.lane")
        await asyncio.sleep(0.005)
    [slow] = batcher.policies()
    print(slow.traffic_class, slow.policy.linger_seconds, slow.rate > 50)
    print("scipy.signal" in sys.modules)
    end = loop.time() + 3.0
    while loop.time() < end and not strategy.policy_for("fast.lane").linger_seconds:
        for _ in range(100):  # 100 000 msg/s in 1 ms ticks
            await publish("fast.lane")
        await asyncio.sleep(0.001)
    print("scipy.signal" in sys.modules, strategy.policy_for("fast.lane").linger_seconds > 0)
    await batcher.close()

asyncio.run(main())
"""


def test_the_tuner_loads_the_analyser_only_once_a_family_could_linger():
    """scipy.signal costs ~0.9 s of CPU to import: a bus whose traffic is too slow for
    batching to linger never imports it (its families are shown with no class), and one
    whose traffic speeds up does, then tunes. In a fresh interpreter, to see the import."""
    done = subprocess.run(
        [sys.executable, "-c", TUNER_SCRIPT], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:3] == ["None 0.0 True", "False", "True True"]


async def test_closed_batcher_refuses(ring):
    _wire, batcher = await started(ring, BatchPolicy(10, 1 << 20, 0.0))
    await batcher.close()
    with pytest.raises(Exception, match="closed"):
        batcher.submit("a.b", 1, "msg", None)


@pytest.mark.parametrize(
    ("subject", "family"),
    [
        ("tasks.s1.result", "tasks.s1"),
        ("tasks", "tasks"),
        ("a.b", "a.b"),
        ("amcp.prod.ctx.delta.x", "amcp.prod.ctx.delta"),
        ("amcp.prod.vote", "amcp.prod.vote"),
    ],
)
def test_subject_family(subject, family):
    assert subject_family(subject) == family


def test_make_strategy():
    sampler = TrafficSampler()
    assert make_strategy("off", sampler) is None
    adaptive = make_strategy("adaptive", sampler)
    assert isinstance(adaptive, AdaptiveBatching) and adaptive.sampler is sampler
    assert adaptive.limits == BUS_LIMITS
    policy = BatchPolicy(8, 4096, 0.001)
    assert make_strategy(policy, sampler) == FixedBatching(policy)
    custom = FixedBatching(policy)
    assert make_strategy(custom, sampler) is custom
    with pytest.raises(ConfigError):
        make_strategy("fast", sampler)  # type: ignore[arg-type]
