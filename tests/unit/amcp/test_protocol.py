"""Sealer/Opener without a server: every bad input of issue 2 is rejected with its reason,
counted, and the opener keeps accepting good frames afterwards."""

from __future__ import annotations

import os

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amcp import EncodeError, FrameLimits, FrameRejected, Key, Keyring, Opener, Reason, Sealer
from amcp.envelope import MAC_SIZE, pack_envelope
from tests.support import factories

SUBJECT = "orders.created"
NOW = 1_800_000_000.0


class Clock:
    """A settable clock so timestamps and key expiry are deterministic."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ring(clock: Clock) -> Keyring:
    return factories.ring(clock.now)


@pytest.fixture
def sealer(ring: Keyring, clock: Clock) -> Sealer:
    return Sealer("alice", ring, clock=clock)


@pytest.fixture
def opener(ring: Keyring, clock: Clock) -> Opener:
    return Opener(ring, clock=clock)


def reason_of(opener: Opener, frame: bytes, subject: str = SUBJECT) -> str:
    with pytest.raises(FrameRejected) as info:
        opener.open(subject, frame)
    return info.value.reason


def signed_fields(fields: list, ring: Keyring, subject: str = SUBJECT) -> bytes:
    """A frame with arbitrary fields and a valid MAC: only type checks can catch it."""
    envelope = pack_envelope(fields)
    return envelope + ring.keys[0].mac.sign(subject, envelope)


def test_round_trip_carries_every_field(sealer: Sealer, opener: Opener) -> None:
    frame = sealer.seal(SUBJECT, {"id": 7, "items": [1, 2]}, kind="order", headers={"a": "b"})
    msg = opener.open(SUBJECT, frame)
    assert (msg.sender, msg.seq, msg.kind, msg.headers, msg.body) == (
        "alice",
        1,
        "order",
        {"a": "b"},
        {"id": 7, "items": [1, 2]},
    )
    assert msg.epoch == sealer.epoch and msg.ts_ms == int(NOW * 1000)
    assert len(msg.msg_id) == 16


def test_every_bit_flip_is_rejected_and_good_frames_still_pass(
    sealer: Sealer, opener: Opener
) -> None:
    frame = sealer.seal(SUBJECT, b"payload-bytes")
    for bit in range(len(frame) * 8):
        mutated = bytearray(frame)
        mutated[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(FrameRejected):
            opener.open(SUBJECT, bytes(mutated))
    assert opener.stats.total == len(frame) * 8
    assert opener.open(SUBJECT, frame).body == b"payload-bytes"


def test_unknown_and_expired_keys(sealer: Sealer, opener: Opener, clock: Clock) -> None:
    stranger = Sealer("mallory", Keyring.generate(), clock=clock)
    assert reason_of(opener, stranger.seal(SUBJECT, 1)) == Reason.UNKNOWN_KEY
    old = Key("old", os.urandom(32), NOW - 100, NOW - 100, expires_at=NOW - 1)
    expired_ring = Keyring([old])
    # The sender still holds the expired key; the receiver has it too, but expired.
    opener.keyring = Keyring([*opener.keyring.keys, old])
    frame = Sealer(
        "bob", Keyring([Key("old", old.secret, NOW - 100, NOW - 100)]), clock=clock
    ).seal(SUBJECT, 1)
    assert reason_of(opener, frame) == Reason.UNKNOWN_KEY
    assert expired_ring.verify_key("old", NOW) is None
    assert opener.open(SUBJECT, sealer.seal(SUBJECT, "ok")).body == "ok"


def test_exact_replay_and_reordered_replay(sealer: Sealer, opener: Opener) -> None:
    frames = [sealer.seal(SUBJECT, i) for i in range(5)]
    for frame in (frames[0], frames[2], frames[1], frames[4], frames[3]):  # out of order: fine
        opener.open(SUBJECT, frame)
    assert reason_of(opener, frames[2]) == Reason.REPLAY
    for frame in reversed(frames):  # replays in another order
        assert reason_of(opener, frame) == Reason.REPLAY
    assert opener.stats.counts[Reason.REPLAY] == 6


def test_timestamps_outside_the_skew_window_either_way(
    ring: Keyring, opener: Opener, clock: Clock
) -> None:
    past = Sealer("p", ring, clock=Clock(NOW - 31)).seal(SUBJECT, 1)
    future = Sealer("f", ring, clock=Clock(NOW + 31)).seal(SUBJECT, 1)
    near = Sealer("n", ring, clock=Clock(NOW + 29)).seal(SUBJECT, 1)
    assert reason_of(opener, past) == Reason.STALE
    assert reason_of(opener, future) == Reason.STALE
    assert opener.open(SUBJECT, near).sender == "n"


def test_truncated_random_and_oversize_frames(sealer: Sealer, ring: Keyring, clock: Clock) -> None:
    opener = Opener(ring, clock=clock, limits=FrameLimits(max_frame_bytes=4096))
    frame = sealer.seal(SUBJECT, "x")
    assert reason_of(opener, frame[: len(frame) // 2]) in (Reason.MALFORMED, Reason.BAD_SIGNATURE)
    assert reason_of(opener, frame[:MAC_SIZE]) == Reason.MALFORMED
    assert reason_of(opener, b"") == Reason.MALFORMED
    assert reason_of(opener, os.urandom(300)) == Reason.MALFORMED
    assert reason_of(opener, b"\x00" * 5000) == Reason.OVERSIZE
    assert opener.open(SUBJECT, sealer.seal(SUBJECT, "after")).body == "after"


def test_oversize_is_refused_when_sealing_too() -> None:
    sealer = Sealer("a", Keyring.generate(), limits=FrameLimits(max_frame_bytes=1024))
    with pytest.raises(EncodeError, match="exceeds"):
        sealer.seal(SUBJECT, b"x" * 2000)
    with pytest.raises(EncodeError):
        sealer.seal(SUBJECT, object())


def test_deeply_nested_body_is_rejected(sealer: Sealer, opener: Opener) -> None:
    deep: list = []
    for _ in range(40):
        deep = [deep]
    assert reason_of(opener, sealer.seal(SUBJECT, deep)) == Reason.MALFORMED
    shallow: list = []
    for _ in range(20):
        shallow = [shallow]
    assert opener.open(SUBJECT, sealer.seal(SUBJECT, shallow)).body == shallow


@pytest.mark.parametrize(
    "index, bad",
    [
        (0, 2),
        (0, "1"),
        (1, 64),
        (2, b"short"),
        (3, 42),
        (3, ""),
        (4, -1),
        (4, "e"),
        (5, 1.5),
        (6, None),
        (7, ["k1"]),
        (8, {}),
        (9, {"a": 1}),
        (9, [1]),
        (3, "s" * 200),
    ],
)
def test_wrong_field_types_are_malformed_even_with_a_valid_mac(
    index: int, bad: object, ring: Keyring, opener: Opener
) -> None:
    fields = [1, 0, b"\x01" * 16, "alice", 1, 1, int(NOW * 1000), "k1", "msg", {}, None]
    fields[index] = bad
    assert reason_of(opener, signed_fields(fields, ring)) == Reason.MALFORMED


def test_extension_types_and_wrong_shapes_are_malformed(ring: Keyring, opener: Opener) -> None:
    ext = msgpack.packb(
        [1, 0, b"\x01" * 16, "a", 1, 1, int(NOW * 1000), "k1", "m", {}, msgpack.ExtType(5, b"x")]
    )
    assert reason_of(opener, ext + ring.keys[0].mac.sign(SUBJECT, ext)) == Reason.MALFORMED
    assert reason_of(opener, signed_fields([1, 2, 3], ring)) == Reason.MALFORMED
    huge_headers = {f"h{i}": "v" * 100 for i in range(50)}
    fields = [1, 0, b"\x01" * 16, "a", 1, 1, int(NOW * 1000), "k1", "m", huge_headers, None]
    assert reason_of(opener, signed_fields(fields, ring)) == Reason.MALFORMED


def test_a_frame_republished_to_another_subject_is_rejected(sealer: Sealer, opener: Opener) -> None:
    frame = sealer.seal(SUBJECT, "for orders only")
    assert reason_of(opener, frame, "orders.deleted") == Reason.BAD_SIGNATURE
    assert opener.open(SUBJECT, frame).body == "for orders only"  # the window did not move


def test_forged_frames_do_not_move_the_window(sealer: Sealer, opener: Opener) -> None:
    genuine = sealer.seal(SUBJECT, "real")
    forged = bytearray(sealer.seal(SUBJECT, "fake"))
    forged[-1] ^= 0xFF
    assert reason_of(opener, bytes(forged)) == Reason.BAD_SIGNATURE
    assert opener.open(SUBJECT, genuine).body == "real"


def test_a_restarted_sender_starts_a_new_epoch(ring: Keyring, opener: Opener, clock: Clock) -> None:
    first = Sealer("svc", ring, clock=clock, epoch=100)
    old_frame = first.seal(SUBJECT, "old")
    opener.open(SUBJECT, first.seal(SUBJECT, "a"))
    restarted = Sealer("svc", ring, clock=clock, epoch=200)
    assert opener.open(SUBJECT, restarted.seal(SUBJECT, "b")).seq == 1
    assert reason_of(opener, old_frame) == Reason.STALE


def test_rotation_signs_with_the_new_key_only_after_activation(clock: Clock) -> None:
    ring = Keyring([Key("k1", os.urandom(32), NOW - 10, NOW - 10)])
    new = ring.rotate(now=NOW, activate_after=10, grace=60)
    receiver = Opener(ring, clock=clock)
    assert Sealer("a", ring, clock=clock).seal(SUBJECT, 1) and ring.signing_key(NOW).kid == "k1"
    assert ring.signing_key(NOW + 11).kid == new.kid
    later = Clock(NOW + 11)
    receiver.clock = later
    frame = Sealer("b", ring, clock=later).seal(SUBJECT, 2)
    assert receiver.open(SUBJECT, frame).body == 2
    # The old key verifies through the grace period and not after it.
    assert ring.verify_key("k1", NOW + 69) is not None
    assert ring.verify_key("k1", NOW + 71) is None


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_frames_only_ever_raise_frame_rejected(
    data: st.DataObject, sealer: Sealer, opener: Opener
) -> None:
    body = data.draw(
        st.recursive(
            st.none()
            | st.booleans()
            | st.integers(-(2**63), 2**63 - 1)
            | st.text(max_size=20)
            | st.binary(max_size=20),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(st.text(max_size=5), inner, max_size=4)
            ),
            max_leaves=10,
        )
    )
    frame = bytearray(sealer.seal(SUBJECT, body))
    ops = data.draw(
        st.lists(
            st.tuples(
                st.sampled_from(["flip", "cut", "insert", "set"]),
                st.integers(0, 10_000),
                st.integers(0, 255),
            ),
            min_size=1,
            max_size=4,
        )
    )
    for op, pos, value in ops:
        pos %= max(len(frame), 1)
        if not frame and op in ("flip", "set"):
            continue
        if op == "flip":
            frame[pos] ^= 1 << (value % 8)
        elif op == "cut":
            del frame[pos:]
        elif op == "insert":
            frame.insert(pos, value)
        else:
            frame[pos] = value
    try:
        msg = opener.open(SUBJECT, bytes(frame))
    except FrameRejected as rejected:
        assert rejected.reason in Reason.ALL
    else:  # a mutation that changed nothing (e.g. set a byte to its own value)
        assert msg.body == body
