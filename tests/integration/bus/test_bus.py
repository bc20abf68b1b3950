"""The Bus on a real nats-server: verified delivery, bad frames rejected and counted while
good ones keep arriving, queue groups, request/reply, handler failures, reconnects."""

from __future__ import annotations

import asyncio
import os

import nats
import pytest

from amcp import Bus, FrameLimits, Keyring, NatsServer, NoResponders, Reason, RequestTimeout
from amcp.envelope import pack_envelope
from tests.support.waiting import wait_until


async def test_publish_subscribe_delivers_verified_messages(make_bus) -> None:
    alice, bob = await make_bus("alice"), await make_bus("bob")
    got = []
    await bob.subscribe("t.hello", lambda m: got.append((m.sender, m.seq, m.body)))
    await bob.flush()
    for i in range(3):
        await alice.publish("t.hello", {"n": i})
    await wait_until(lambda: len(got) == 3, what="three messages")
    assert got == [("alice", 1, {"n": 0}), ("alice", 2, {"n": 1}), ("alice", 3, {"n": 2})]


async def test_bad_frames_are_rejected_counted_and_good_ones_still_arrive(
    make_bus, nats_server: NatsServer, keyring: Keyring
) -> None:
    alice = await make_bus("alice")
    bob = await make_bus("bob", limits=FrameLimits(max_frame_bytes=64 * 1024))
    got = []
    await bob.subscribe("t.attack", lambda m: got.append(m.body))
    await bob.flush()
    raw = await nats.connect(nats_server.url)
    good = alice.sealer.seal("t.attack", "first")
    flipped = bytearray(alice.sealer.seal("t.attack", "flipped"))
    flipped[20] ^= 0x01
    stranger = Bus(raw, Keyring.generate(), "mallory").sealer.seal("t.attack", "forged")
    for_other_subject = alice.sealer.seal("t.elsewhere", "moved")
    deep: list = []
    for _ in range(50):
        deep = [deep]
    too_deep = alice.sealer.seal("t.attack", deep)
    wrong_types = pack_envelope([1, 0, b"\x00" * 16, "alice", "epoch?", 1, 1, "k", "m", {}, 1])
    frames = [
        good,
        bytes(flipped),
        stranger,
        for_other_subject,
        too_deep,
        good,
        os.urandom(64),
        good[:40],
        wrong_types + keyring.keys[0].mac.sign("t.attack", wrong_types),
        b"\x00" * 100_000,
    ]
    for frame in frames:
        await raw.publish("t.attack", frame)
    await raw.flush()
    await alice.publish("t.attack", "last")
    await wait_until(lambda: got[-1:] == ["last"], what="the good message after the attack")
    assert got == ["first", "last"]
    counts = bob.rejections
    assert counts[Reason.BAD_SIGNATURE] == 2  # the flipped bit, the re-published frame
    assert counts[Reason.UNKNOWN_KEY] == 1
    assert counts[Reason.REPLAY] == 1
    assert counts[Reason.MALFORMED] == 4  # too deep, random, truncated, wrong types
    assert counts[Reason.OVERSIZE] == 1
    await raw.close()


async def test_handler_exceptions_do_not_kill_the_subscription(make_bus) -> None:
    alice, bob = await make_bus("alice"), await make_bus("bob")
    got = []

    async def handler(msg) -> None:
        if msg.body == "boom":
            raise RuntimeError("handler bug")
        got.append(msg.body)

    await bob.subscribe("t.h", handler)
    await bob.flush()
    for body in ("a", "boom", "b"):
        await alice.publish("t.h", body)
    await wait_until(lambda: got == ["a", "b"], what="both good messages")
    assert bob.handler_errors == 1


async def test_queue_groups_share_the_work(make_bus) -> None:
    sender = await make_bus("sender")
    workers = [await make_bus(f"w{i}") for i in range(3)]
    seen: dict[str, list[int]] = {w.sender: [] for w in workers}
    for w in workers:
        await w.subscribe(
            "t.jobs", lambda m, name=w.sender: seen[name].append(m.body), queue="workers"
        )
        await w.flush()
    for i in range(60):
        await sender.publish("t.jobs", i)
    await wait_until(lambda: sum(map(len, seen.values())) == 60, what="60 jobs")
    assert sorted(j for jobs in seen.values() for j in jobs) == list(
        range(60)
    )  # each job exactly once
    assert sum(1 for jobs in seen.values() if jobs) >= 2


async def test_request_reply_timeout_and_no_responders(make_bus) -> None:
    client, server = await make_bus("client"), await make_bus("server")

    async def echo(msg) -> None:
        await msg.respond({"echo": msg.body, "to": msg.sender})

    await server.subscribe("t.rpc", echo)
    await server.flush()
    reply = await client.request("t.rpc", "ping", timeout=2)
    assert (reply.body, reply.sender, reply.kind) == (
        {"echo": "ping", "to": "client"},
        "server",
        "rep",
    )
    with pytest.raises(NoResponders, match=r"t\.nobody"):
        await client.request("t.nobody", 1, timeout=2)
    silent = await server.subscribe("t.silent", lambda m: None)
    await server.flush()
    with pytest.raises(RequestTimeout, match=r"t\.silent"):
        await client.request("t.silent", 1, timeout=0.2)
    await silent.unsubscribe()


async def test_a_forged_reply_does_not_end_a_request(make_bus, nats_server: NatsServer) -> None:
    client, server = await make_bus("client"), await make_bus("server")
    raw = await nats.connect(nats_server.url)
    forger = Bus(raw, Keyring.generate(), "mallory")

    async def slow_echo(msg) -> None:
        await raw.publish(msg.reply_to, forger.sealer.seal(msg.reply_to, "forged"))
        await raw.flush()
        # the genuine reply goes only once the client has refused the forged one (two
        # connections: nothing else orders their frames at the client)
        await wait_until(
            lambda: client.rejections[Reason.UNKNOWN_KEY] == 1, 5, what="the forged reply refused"
        )
        await msg.respond("genuine")

    await server.subscribe("t.rpc2", slow_echo)
    await server.flush()
    reply = await client.request("t.rpc2", "?", timeout=10)
    assert reply.body == "genuine"  # the forged reply came first and did not end it
    assert client.rejections[Reason.UNKNOWN_KEY] == 1
    await raw.close()


async def test_async_iteration(make_bus) -> None:
    alice, bob = await make_bus("alice"), await make_bus("bob")
    sub = await bob.subscribe("t.iter")
    await bob.flush()
    await alice.publish("t.iter", 1)
    await alice.publish("t.iter", 2)
    assert [(await sub.next(timeout=2)).body, (await sub.next(timeout=2)).body] == [1, 2]
    with pytest.raises(RequestTimeout):
        await sub.next(timeout=0.05)


async def test_reconnects_after_the_server_restarts(keyring: Keyring) -> None:
    server = NatsServer(name="restart").start()
    try:
        alice = await Bus.connect(server.url, keyring=keyring, sender="alice")
        bob = await Bus.connect(server.url, keyring=keyring, sender="bob")
        got = []
        await bob.subscribe("t.re", lambda m: got.append(m.body))
        await bob.flush()
        server.stop()
        await wait_until(
            lambda: not alice.is_connected and not bob.is_connected,
            what="both clients to notice the outage",
        )
        server.start()
        await wait_until(
            lambda: alice.is_connected and bob.is_connected,
            timeout=15,
            what="both clients to reconnect",
        )
        await bob.flush()  # the subscription is re-sent on reconnect
        await alice.publish("t.re", "after restart")
        await wait_until(lambda: got == ["after restart"], what="delivery after reconnect")
        await alice.close()
        await bob.close()
    finally:
        server.close()


async def test_close_delivers_what_was_published(make_bus) -> None:
    alice, bob = await make_bus("alice"), await make_bus("bob")
    got = []
    await bob.subscribe("t.drain", lambda m: got.append(m.body))
    await bob.flush()
    for i in range(500):
        await alice.publish("t.drain", i)
    await alice.close()  # drains: everything published is flushed first
    await wait_until(lambda: len(got) == 500, what="all 500 messages")
    assert got == list(range(500))


async def test_bad_subjects_are_refused_before_anything_is_sent(make_bus) -> None:
    from amcp import ConfigError

    alice = await make_bus("alice")
    for subject in ("a b", "a..b", "a.*", "", "a\r\nPUB x 1"):
        with pytest.raises(ConfigError):
            await alice.publish(subject, 1)
    with pytest.raises(ConfigError):
        await alice.subscribe("a.>.b")
    await asyncio.sleep(0)


async def test_flush_returns_only_after_the_server_read_the_pending_sub(keyring: Keyring) -> None:
    """nats-py 2.16's flush writes PING ahead of a pending SUB; Bus.flush must not return
    before the server has read the SUB. A scripted NATS peer records the command order,
    so this is deterministic (against a real server the race is microseconds wide)."""
    seen_when_ponged: list[list[bytes]] = []
    received: list[bytes] = []

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b'INFO {"server_id":"scripted","version":"2.10.0","proto":1,'
            b'"headers":true,"max_payload":1048576}\r\n'
        )
        await writer.drain()
        while line := await reader.readline():
            received.append(line)
            if line.startswith(b"PING"):
                seen_when_ponged.append(list(received))
                writer.write(b"PONG\r\n")
                await writer.drain()
            elif line.startswith(b"PUB"):
                await reader.readexactly(int(line.split()[-1]) + 2)

    server = await asyncio.start_server(peer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    bus = await Bus.connect(f"nats://127.0.0.1:{port}", keyring=keyring, sender="s")
    try:
        await bus.subscribe("t.flushed", lambda m: None)
        await bus.flush()
        assert any(line.startswith(b"SUB t.flushed ") for line in seen_when_ponged[-1])
    finally:
        await bus.close()
        server.close()
