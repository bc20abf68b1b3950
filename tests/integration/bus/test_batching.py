"""Batching, compression, adaptive timeouts and circuit breakers on a real nats-server."""

from __future__ import annotations

import asyncio
import zlib

import msgpack
import pytest

from amcp import Bus
from amcp.envelope import FLAG_BATCH, FLAG_COMPRESSED, MAC_SIZE
from amcp.errors import CircuitOpen, NoResponders, RequestTimeout
from amcp.framebody import encode_item
from netopt import AdaptiveBatching, Backoff, BatchPolicy, CircuitBreaker, PerKey, TrafficSampler
from tests.support.waiting import wait_until

LINGER = BatchPolicy(max_messages=1000, max_bytes=1 << 20, linger_seconds=30.0)
SMALL = BatchPolicy(max_messages=50, max_bytes=1 << 20, linger_seconds=30.0)


async def collector(bus: Bus, subject: str) -> list:
    got: list = []
    await bus.subscribe(subject, got.append)
    await bus.flush()
    return got


async def raw_frames(bus: Bus, subject: str) -> list[bytes]:
    """Frames as they travel, seen through a plain NATS subscription."""
    frames: list[bytes] = []

    async def on_frame(msg) -> None:
        frames.append(msg.data)

    await bus.nc.subscribe(subject, cb=on_frame)
    await bus.flush()
    return frames


def flags(frame: bytes) -> int:
    return msgpack.unpackb(frame[:-MAC_SIZE])[1]


async def warm_up(bus: Bus, subject: str) -> None:
    """A first message goes at once (nothing precedes it); the ones after it linger."""
    await bus.publish(subject, "warm-up")
    await bus.flush()


async def test_batches_are_split_in_order_with_their_own_seqs(make_bus):
    pub = await make_bus("alice", batching=SMALL)
    sub = await make_bus("bob", batching="off")
    got = await collector(sub, "orders.created")
    frames = await raw_frames(sub, "orders.created")
    await warm_up(pub, "orders.created")
    for i in range(120):
        await pub.publish("orders.created", {"i": i}, headers={"n": str(i)} if i % 7 else None)
    await pub.flush()
    await wait_until(lambda: len(got) == 121, 5, what="121 messages")
    assert [m.body for m in got[1:]] == [{"i": i} for i in range(120)]
    assert [m.headers for m in got[1:8]] == [{}, *({"n": str(i)} for i in range(1, 7))]
    seqs = [m.seq for m in got]
    assert seqs == sorted(seqs) and len(set(seqs)) == 121
    assert {m.sender for m in got} == {"alice"}
    batch_frames = [f for f in frames if flags(f) & FLAG_BATCH]
    assert len(batch_frames) == 3 and pub.batcher.flushes["count"] == 2  # 50 + 50 + 20
    assert sum(sub.rejections.values()) == 0


async def test_a_replayed_inner_message_is_dropped_and_counted(make_bus):
    pub = await make_bus("alice", batching="off")
    sub = await make_bus("bob")
    got = await collector(sub, "replay.t")
    await pub.publish("replay.t", "before")  # seq 1
    await wait_until(lambda: len(got) == 1, 5, what="the first message")
    seal = pub.sealer.seal
    body = [3, [[3, 0, "msg", {}, "a"], [1, 0, "msg", {}, "replayed"], [4, 0, "msg", {}, "b"]]]
    await pub.publish_frame("replay.t", seal("replay.t", body, "batch", flags=FLAG_BATCH, seq=2))
    pub.sealer.seq = 4
    await pub.publish("replay.t", "after")
    await wait_until(lambda: len(got) == 4, 5, what="the good messages")
    assert [m.body for m in got] == ["before", "a", "b", "after"]
    assert sub.rejections["replay"] == 1


async def test_compressed_frames_flagged_smaller_and_intact(make_bus):
    pub = await make_bus("alice", batching="off", compress_threshold=512)
    sub = await make_bus("bob")
    got = await collector(sub, "logs.big")
    frames = await raw_frames(sub, "logs.big")
    text = {"lines": ["GET /health 200 OK in 3 ms"] * 300}
    await pub.publish("logs.big", text)
    await pub.publish("logs.big", {"small": True})
    await wait_until(lambda: len(got) == 2 and len(frames) == 2, 5, what="both messages")
    assert [m.body for m in got] == [text, {"small": True}]
    assert flags(frames[0]) == FLAG_COMPRESSED and flags(frames[1]) == 0
    assert len(frames[0]) * 10 < len(msgpack.packb(text))


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (zlib.compress(msgpack.packb(bytes(16 << 20)), 9), "oversize"),  # a 16 MiB bomb
        (zlib.compress(msgpack.packb("a" * 300_000), 9), "oversize"),  # ratio past 100
        (b"\x78\x9cnot deflate at all", "malformed"),
    ],
)
async def test_bad_compressed_frames_are_counted_and_good_ones_around_arrive(
    make_bus, payload, reason
):
    pub = await make_bus("alice", batching="off")
    sub = await make_bus("bob")
    got = await collector(sub, "bombs.t")
    await pub.publish("bombs.t", "before")
    bomb = pub.sealer.seal("bombs.t", payload, flags=FLAG_COMPRESSED)
    await pub.publish_frame("bombs.t", bomb)
    await pub.publish("bombs.t", "after")
    await wait_until(lambda: len(got) == 2 and sub.rejections[reason] == 1, 5, what=reason)
    assert [m.body for m in got] == ["before", "after"]


@pytest.mark.parametrize(
    "body",
    [
        [3, [[2, 0, "msg", {}, "x"], [3, 0, "msg", {}, "y"]]],  # says 3, carries 2
        [1, [[2, FLAG_BATCH, "msg", {}, [1, [[3, 0, "msg", {}, "z"]]]]]],  # nested batch
    ],
)
async def test_malformed_batch_frames_are_counted_and_good_ones_around_arrive(make_bus, body):
    pub = await make_bus("alice", batching="off")
    sub = await make_bus("bob")
    got = await collector(sub, "bad.batch")
    await pub.publish("bad.batch", "before")
    frame = pub.sealer.seal("bad.batch", body, "batch", flags=FLAG_BATCH)
    pub.sealer.seq += 5  # the good message after keeps clear of the forged inner seqs
    await pub.publish_frame("bad.batch", frame)
    await pub.publish("bad.batch", "after")
    await wait_until(
        lambda: len(got) == 2 and sub.rejections["malformed"] == 1, 5, what="malformed"
    )
    assert [m.body for m in got] == ["before", "after"]


async def test_close_sends_everything_still_lingering(make_bus):
    pub = await make_bus("alice", batching=LINGER)
    sub = await make_bus("bob")
    got = await collector(sub, "drain.t")
    await warm_up(pub, "drain.t")
    for i in range(300):
        await pub.publish("drain.t", i)
    assert pub.batcher.queued == 300  # a 30 s linger: all of them still waiting
    await pub.close()
    await wait_until(lambda: len(got) == 301, 5, what="every message after close")
    assert [m.body for m in got[1:]] == list(range(300))


async def test_immediate_and_high_attention_bypass_the_batch(make_bus):
    pub = await make_bus("alice", batching=LINGER, attention_threshold=0.8)
    sub = await make_bus("bob")
    got = await collector(sub, "bypass.>")
    await warm_up(pub, "bypass.slow")
    for i in range(5):
        await pub.publish("bypass.slow", i)
    await pub.publish("bypass.slow", "routine", attention=0.2)  # below the bar: batched
    await pub.publish("bypass.fast", "urgent", immediate=True)
    await pub.publish("bypass.fast", "important", attention=0.95)
    await wait_until(lambda: len(got) == 3, 5, what="the bypassing messages")
    assert [m.body for m in got[1:]] == ["urgent", "important"]
    assert pub.batcher.queued == 6
    # On the subject that holds a batch, a bypassing message goes right after it, in order.
    await pub.publish("bypass.slow", "now", immediate=True)
    await wait_until(lambda: len(got) == 10, 5, what="the slow batch, then 'now'")
    assert [m.body for m in got[3:]] == [0, 1, 2, 3, 4, "routine", "now"]
    assert pub.batcher.queued == 0


async def test_adaptive_batching_retunes_from_live_traffic(make_bus):
    sampler = TrafficSampler(bin_seconds=0.01, bins=128)
    strategy = AdaptiveBatching(sampler, interval_seconds=0.2, min_bins=32)
    pub = await make_bus("alice", batching=strategy)
    sub = await make_bus("bob")
    got = await collector(sub, "tele.metrics.>")
    loop = asyncio.get_running_loop()
    sent = 0

    start = loop.time()

    async def lingering() -> bool:
        nonlocal sent
        deadline = loop.time() + 0.05
        while loop.time() < deadline:  # 5 000 msg/s on a schedule, in ~1 ms ticks
            while sent < 5000 * (loop.time() - start):
                await pub.publish("tele.metrics.cpu", sent)
                sent += 1
            await asyncio.sleep(0.001)
        return strategy.policy_for("tele.metrics").linger_seconds > 0

    await wait_until(lingering, 10, interval=0, what="a lingering policy")
    assert pub.batcher.frames < pub.batcher.messages  # several messages per frame
    [family] = pub.traffic()
    assert family.family == "tele.metrics" and family.rate > 1000
    await pub.flush()
    await wait_until(lambda: len(got) == sent, 5, what="every message")
    assert [m.body for m in got] == list(range(sent))


async def test_request_timeouts_adapt_to_the_round_trip(make_bus):
    client = await make_bus("client")
    server = await make_bus("server")
    delay = {"s": 0.02}

    async def echo(msg) -> None:
        await asyncio.sleep(delay["s"])
        await msg.respond(msg.body)

    await server.subscribe("svc.echo", echo)
    await server.flush()
    rto = client.rtos.get("svc.echo")
    assert rto.rto == 1.0  # RFC 6298 initial value, before any sample
    for i in range(10):
        assert (await client.request("svc.echo", i, timeout=None)).body == i
    assert 0.015 < rto.srtt < 0.2
    assert rto.rto < 0.5
    learned = rto.rto
    delay["s"] = 1.0  # the service slows down past the learned timeout
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(RequestTimeout):
        await client.request("svc.echo", "slow", timeout=None)
    assert loop.time() - started < 0.6  # gave up at the adaptive timeout, not after 1 s
    assert rto.rto == pytest.approx(min(2 * learned, rto.max_rto))  # backed off


async def test_circuit_breaker_opens_then_half_opens_and_closes(make_bus):
    client = await make_bus("client")
    client.breakers = PerKey(lambda: CircuitBreaker(failure_threshold=3, open_seconds=0.3))
    retry = Backoff(base_seconds=0.001, cap_seconds=0.01, max_retries=2)
    with pytest.raises(NoResponders):  # three attempts, nobody listening: the circuit opens
        await client.request_with_retry("svc.down", "ping", backoff=retry, timeout=0.5)
    breaker = client.breakers.get("svc.down")
    assert breaker.state == "open"
    loop = asyncio.get_running_loop()
    opened = loop.time()
    with pytest.raises(CircuitOpen):  # refused at once, nothing sent
        await client.request_with_retry("svc.down", "ping", backoff=retry, timeout=0.5)
    assert loop.time() - opened < 0.1

    server = await make_bus("server")

    async def pong(msg) -> None:
        await msg.respond("pong")

    await server.subscribe("svc.down", pong)
    await server.flush()
    await wait_until(lambda: loop.time() > opened + 0.3, 2, what="the open period to pass")
    reply = await client.request_with_retry("svc.down", "ping", backoff=retry, timeout=0.5)
    assert reply.body == "pong"  # the half-open probe succeeded
    assert breaker.state == "closed"


async def test_a_failed_probe_opens_the_circuit_again(make_bus):
    client = await make_bus("client")
    client.breakers = PerKey(lambda: CircuitBreaker(failure_threshold=1, open_seconds=0.2))
    once = Backoff(max_retries=0)
    with pytest.raises(NoResponders):
        await client.request_with_retry("svc.gone", 1, backoff=once, timeout=0.5)
    breaker = client.breakers.get("svc.gone")
    loop = asyncio.get_running_loop()
    opened = loop.time()
    await wait_until(lambda: loop.time() > opened + 0.2, 2, what="the open period to pass")
    with pytest.raises(NoResponders):  # the probe goes out and fails
        await client.request_with_retry("svc.gone", 1, backoff=once, timeout=0.5)
    assert breaker.state == "open"
    with pytest.raises(CircuitOpen):
        await client.request_with_retry("svc.gone", 1, backoff=once, timeout=0.5)


async def test_a_reply_that_arrives_in_a_batch_is_taken_from_it(make_bus):
    client = await make_bus("client")
    server = await make_bus("server")

    async def batched_reply(msg) -> None:
        items = [encode_item("rep", None, "first"), encode_item("rep", None, "second")]
        await server.publish_frame(msg.reply_to, server.sealer.seal_items(msg.reply_to, items))

    await server.subscribe("svc.batched", batched_reply)
    await server.flush()
    reply = await client.request("svc.batched", "hi", timeout=2)
    assert reply.body == "first" and reply.kind == "rep"
