"""Trace context on the wire: the current span's `traceparent` goes in the signed headers of
every message (each inner message of a batch too), and a handler runs in the sender's span."""

from __future__ import annotations

import functools

import msgpack
import nats

from amcp import Bus, Keyring, NatsServer, Reason
from amcp.envelope import FLAG_BATCH, MAC_SIZE
from amcp.groupcommit import GroupCommit
from amcp.tracing import SpanContext, current_span, new_trace, use_span, with_trace
from netopt import BatchPolicy
from tests.support.waiting import wait_until

SMALL = BatchPolicy(max_messages=50, max_bytes=1 << 20, linger_seconds=30.0)


async def spans_seen(bus: Bus, subject: str) -> list[tuple[object, SpanContext | None]]:
    """(body, the current span inside the handler) per message received."""
    seen: list[tuple[object, SpanContext | None]] = []

    async def handler(msg) -> None:
        seen.append((msg.body, current_span.get()))

    await bus.subscribe(subject, handler)
    await bus.flush()
    return seen


async def test_a_handler_runs_in_the_senders_span(make_bus) -> None:
    alice, bob = await make_bus("alice", batching="off"), await make_bus("bob")
    # bob subscribes inside a span of his own: messages must not inherit it
    with use_span(new_trace()):
        seen = await spans_seen(bob, "t.traced")
    traced = SpanContext(new_trace().trace_id, "00f067aa0ba902b7", 1, "vendor=x")
    with use_span(traced):
        await alice.publish("t.traced", "in a span")
    await alice.publish("t.traced", "outside")
    await wait_until(lambda: len(seen) == 2, what="two messages")
    assert seen == [("in a span", traced), ("outside", None)]
    assert current_span.get() is None


async def test_each_message_of_a_mixed_stream_runs_in_its_own_span(make_bus) -> None:
    """The subscription reuses the last header's context: a change of span, of tracestate
    alone, or to other headers or none must each be seen."""
    alice, bob = await make_bus("alice", batching="off"), await make_bus("bob")
    seen = await spans_seen(bob, "t.mixed")
    first, second = new_trace(), new_trace()
    stated = SpanContext(first.trace_id, first.span_id, first.flags, "vendor=y")
    sends = [first, first, None, second, stated, stated, first, None, "other", first]
    expected = []
    for i, ctx in enumerate(sends):
        if ctx == "other":  # headers, but no trace context in them
            await alice.publish("t.mixed", i, headers={"x-other": "1"})
            expected.append((i, None))
            continue
        with use_span(ctx):
            await alice.publish("t.mixed", i)
        expected.append((i, ctx))
    await wait_until(lambda: len(seen) == len(sends), what="every message")
    assert seen == expected
    assert [s.state for _, s in seen if s is not None][3:5] == ["vendor=y", "vendor=y"]


async def test_every_inner_message_of_a_batch_carries_its_own_span(make_bus) -> None:
    alice = await make_bus("alice", batching=SMALL)
    bob = await make_bus("bob", batching="off")
    seen = await spans_seen(bob, "t.batch")
    frames: list[bytes] = []
    await bob.nc.subscribe("t.batch", cb=functools.partial(_keep, frames))
    await bob.flush()
    await alice.publish("t.batch", "warm-up")  # the first goes at once; the rest linger
    await alice.flush()
    contexts = [new_trace() if i % 3 else None for i in range(30)]
    for i, ctx in enumerate(contexts):
        with use_span(ctx):
            await alice.publish("t.batch", i)
    await alice.flush()
    await wait_until(lambda: len(seen) == 31, what="31 messages")
    batches = [f for f in frames if msgpack.unpackb(f[:-MAC_SIZE])[1] & FLAG_BATCH]
    assert len(batches) == 1  # the 30 travelled in one frame
    assert seen[1:] == list(enumerate(contexts))


async def test_requests_and_their_replies_carry_the_span(make_bus) -> None:
    client, server = await make_bus("client"), await make_bus("server")
    inside: list[SpanContext | None] = []

    async def serve(msg) -> None:
        inside.append(current_span.get())
        await msg.respond("ok")  # in the request's span, so the reply carries it too

    await server.subscribe("t.rpc", serve)
    await server.flush()
    ctx = new_trace()
    with use_span(ctx):
        reply = await client.request("t.rpc", "ping")
        await client.publish_checked("t.rpc.none", "checked")
    assert inside == [ctx] and reply.trace == ctx
    assert (await client.request("t.rpc", "untraced")).trace is None


async def test_an_invalid_traceparent_is_ignored_not_rejected(make_bus) -> None:
    alice, bob = await make_bus("alice", batching="off"), await make_bus("bob")
    seen = await spans_seen(bob, "t.bad")
    for value in ("garbage", "00-" + "0" * 32 + "-00f067aa0ba902b7-01"):
        await alice.publish("t.bad", value, headers={"traceparent": value})
    await wait_until(lambda: len(seen) == 2, what="two messages")
    assert seen == [("garbage", None), ("00-" + "0" * 32 + "-00f067aa0ba902b7-01", None)]
    assert sum(bob.rejections.values()) == 0


async def test_a_copied_traceparent_does_not_carry_a_forged_or_replayed_frame(
    make_bus, nats_server: NatsServer
) -> None:
    alice, bob = await make_bus("alice", batching="off"), await make_bus("bob")
    seen = await spans_seen(bob, "t.secure")
    raw_frames: list[bytes] = []
    sniffer = await nats.connect(nats_server.url)
    await sniffer.subscribe("t.secure", cb=functools.partial(_keep, raw_frames))
    await sniffer.flush()
    ctx = new_trace()
    with use_span(ctx):
        await alice.publish("t.secure", "genuine")
    await wait_until(lambda: len(seen) == 1 and len(raw_frames) == 1, what="the genuine one")
    forger = Bus(sniffer, Keyring.generate(), "alice")  # a key the receiver does not know
    with use_span(ctx):
        forged = forger.sealer.seal("t.secure", "forged")
        fresh = alice.sealer.seal("t.secure", "tampered", headers=with_trace(None))
    tampered = fresh.replace(ctx.trace_id.encode(), new_trace().trace_id.encode())
    assert tampered != fresh
    for frame in (raw_frames[0], forged, tampered):  # replayed, unknown key, header changed
        await sniffer.publish("t.secure", frame)
    await sniffer.flush()
    await alice.publish("t.secure", "last")
    await wait_until(lambda: seen[-1][0] == "last", what="the message after them")
    assert seen == [("genuine", ctx), ("last", None)]
    counts = bob.rejections
    assert (counts[Reason.REPLAY], counts[Reason.UNKNOWN_KEY]) == (1, 1)
    assert counts[Reason.BAD_SIGNATURE] == 1  # the traceparent is inside the MAC
    await sniffer.close()


async def _keep(frames: list[bytes], msg) -> None:
    frames.append(msg.data)


async def test_a_group_commit_frame_carries_each_messages_own_span(make_bus) -> None:
    alice, bob = await make_bus("alice", batching="off"), await make_bus("bob")
    seen = await spans_seen(bob, "t.group")
    commits = GroupCommit(lambda subject, bodies: alice.publish_group(subject, bodies))
    contexts = [new_trace(), new_trace(), None, new_trace()]
    sent = []
    for i, ctx in enumerate(contexts):  # one loop turn: the first alone, the rest one frame
        with use_span(ctx):
            sent.append(commits.submit("t.group", i))
    await sent[0]
    await wait_until(lambda: len(seen) == 4, what="four messages")
    assert commits.frames == 2
    assert seen == list(enumerate(contexts))
    # called directly in a span, a group carries that span on each message
    ctx = new_trace()
    with use_span(ctx):
        await alice.publish_group("t.group", ["x", "y"])
    await wait_until(lambda: len(seen) == 6, what="two more")
    assert seen[4:] == [("x", ctx), ("y", ctx)]
