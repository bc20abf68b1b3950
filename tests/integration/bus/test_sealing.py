"""Sealed subjects on a real nats-server (issue 16, point 4): what NATS carries and
JetStream stores is ciphertext; a receiver with the keyring gets the body; frames a key
holder built by hand around a body that does not open, and plain frames on a sealed
subject, are refused and counted as `bad_seal`, never delivered."""

from __future__ import annotations

import time
import uuid

import nats
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from amcp import Bus, Opener
from amcp.envelope import FLAG_SEALED, pack_envelope
from amcp.framebody import encode_item
from amcp.replay import ReplayGuard
from amcp.sealing import SEAL_ENV, associated_data, seal_key, seal_nonce
from netopt import BatchPolicy
from tests.support.cli import amcp, amcp_async
from tests.support.waiting import wait_until

SEAL = ["orders.>"]
SUBJECT = "orders.new"
MARKER = "MARKER-7f3a-card-4242"


def hand_sealed(
    bus: Bus, plain: bytes, *, secret: bytes | None = None, nonce_back: int = 0
) -> bytes:
    """A frame the bus's key MACs correctly around `plain` sealed under `secret` (else the
    right key) with the nonce of the seq `nonce_back` before the frame's own."""
    sealer = bus.sealer
    now = time.time()
    key = sealer.current_key(now)
    sealer.seq = seq = sealer.seq + 1
    head = sealer._prefix(FLAG_SEALED, seq, now, key) + encode_item("msg", None, None)[0]
    cipher = AESGCM(seal_key(secret or key.secret, sealer.sender, sealer.epoch))
    sealed = cipher.encrypt(seal_nonce(seq - nonce_back), plain, associated_data(SUBJECT, head))
    return key.mac.seal(SUBJECT, head + pack_envelope(sealed))


async def test_nats_carries_ciphertext_and_the_receiver_gets_the_body(
    make_bus, nats_server
) -> None:
    sender = await make_bus("sender", seal=SEAL)
    receiver = await make_bus("receiver", seal=SEAL)
    raw = await nats.connect(nats_server.url)
    try:
        wire = await raw.subscribe(SUBJECT)
        await raw.flush()
        sub = await receiver.subscribe("orders.*")
        await receiver.flush()
        await sender.publish(SUBJECT, {"card": MARKER})
        assert (await sub.next(5)).body == {"card": MARKER}
        frame = (await wire.next_msg(5)).data
        assert MARKER.encode() not in frame
        assert frame[2] & FLAG_SEALED
    finally:
        await raw.close()


async def test_batches_on_a_sealed_subject_are_sealed(make_bus, nats_server) -> None:
    sender = await make_bus("sender", seal=SEAL, batching=BatchPolicy(8, 1 << 20, 0.05))
    receiver = await make_bus("receiver", seal=SEAL)
    raw = await nats.connect(nats_server.url)
    try:
        wire = await raw.subscribe(SUBJECT)
        await raw.flush()
        sub = await receiver.subscribe(SUBJECT)
        await receiver.flush()
        for i in range(8):
            await sender.publish(SUBJECT, f"{MARKER}-{i}")
        await sender.flush()
        assert [(await sub.next(5)).body for _ in range(8)] == [f"{MARKER}-{i}" for i in range(8)]
        frame = (await wire.next_msg(5)).data
        assert MARKER.encode() not in frame
        assert sender.batcher is not None and sender.batcher.frames < 8
    finally:
        await raw.close()


async def test_bodies_that_do_not_open_and_plain_frames_are_bad_seal(make_bus) -> None:
    sender = await make_bus("sender", seal=SEAL)
    plain = await make_bus("plain")  # a key holder that does not seal
    receiver = await make_bus("receiver", seal=SEAL)
    sub = await receiver.subscribe(SUBJECT)
    await receiver.flush()
    bad = [
        hand_sealed(sender, b"\xa3bad", secret=bytes(32)),  # another key
        hand_sealed(sender, b"\xa3bad", nonce_back=1),  # the nonce of the previous seq
    ]
    for frame in bad:
        await sender.publish_frame(SUBJECT, frame)
    await plain.publish(SUBJECT, "in clear")
    await plain.flush()
    await sender.publish(SUBJECT, "genuine")
    assert (await sub.next(5)).body == "genuine"
    await wait_until(lambda: receiver.rejections["bad_seal"] == 3, 5, what="three bad_seal")
    assert sub.delivered == 1


async def test_jetstream_stores_a_sealed_subject_sealed(make_bus) -> None:
    sender = await make_bus("sender", seal=SEAL)
    stream = f"SEALED_{uuid.uuid4().hex[:8]}"
    subject = f"orders.{stream}"
    await sender.streams.ensure(stream, [subject])
    try:
        await sender.streams.publish(subject, {"card": MARKER})
        [(_, stored_on, frame)] = await sender.streams.read(stream)
        assert stored_on == subject
        assert MARKER.encode() not in frame
        reader = Opener(sender.keyring, guard=ReplayGuard())  # as readers of stored frames do
        assert reader.open(subject, frame).body == {"card": MARKER}
    finally:
        await sender.nc.jetstream().delete_stream(stream)


async def test_amcp_send_seals_with_the_flag_or_the_environment(make_bus, cli_env) -> None:
    receiver = await make_bus("receiver", seal=SEAL)
    env = {k: v for k, v in cli_env.items() if k != SEAL_ENV}
    raw = await nats.connect(env["AMCP_NATS_URL"])
    try:
        wire = await raw.subscribe(SUBJECT)
        await raw.flush()
        sub = await receiver.subscribe(SUBJECT)
        await receiver.flush()
        flagged = await amcp_async(
            "send", "--seal", "orders.>", SUBJECT, f'"{MARKER}"', env=cli_env
        )
        from_env = await amcp_async(
            "send", SUBJECT, '"second"', env=cli_env | {SEAL_ENV: "x.y,orders.*"}
        )
        assert (flagged.returncode, from_env.returncode) == (0, 0), flagged.stderr + from_env.stderr
        assert [(await sub.next(5)).body for _ in range(2)] == [MARKER, "second"]
        frames = [(await wire.next_msg(5)).data for _ in range(2)]
        assert all(f[2] & FLAG_SEALED for f in frames) and MARKER.encode() not in frames[0]
        plain = await amcp_async("send", SUBJECT, '"in clear"', env=env)  # no --seal
        assert plain.returncode == 0, plain.stderr
        await wait_until(lambda: receiver.rejections["bad_seal"] == 1, 5, what="refused")
        assert sub.delivered == 2
    finally:
        await raw.close()


def test_a_bad_seal_pattern_is_a_one_line_usage_error(cli_env) -> None:
    done = amcp("send", "--seal", "orders..x", SUBJECT, "1", env=cli_env | {SEAL_ENV: ""})
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "empty token" in done.stderr, done.stderr
