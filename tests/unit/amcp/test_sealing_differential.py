"""The compiled sealed path (amcp._speedups: Sealer.seal and Opener.open with AES-GCM in C)
against the reference (Sealer._seal and Opener._open around PyAesGcm).

Twin sealers give the same frames byte for byte on sealed and plain subjects; twin openers
see the same random sequence of frames (sealed ones from several senders, epochs and keys,
plain ones on sealed subjects, bodies a key holder sealed under the wrong key, nonce or
associated data, sealed bodies that are not one bin or do not decode, replays, tampered and
re-published frames) and must accept the same messages, refuse with the same reason and
detail, count alike and leave the same replay windows. Under AMCP_NO_SPEEDUPS=1 both sides
run the reference (test_sealing runs these tests so).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amcp import FrameLimits, FrameRejected, Key, Keyring, Opener, Sealer
from amcp.envelope import FLAG_COMPRESSED, FLAG_SEALED, pack_envelope
from amcp.errors import KeyringError
from amcp.framebody import encode_item
from amcp.replay import PyReplayGuard, ReplayGuard
from amcp.sealing import (
    CIPHER_BACKEND,
    PyAesGcm,
    SealKeys,
    SealPolicy,
    associated_data,
    seal_key,
    seal_nonce,
)
from tests.unit.amcp.test_protocol_differential import CountingOpener

NOW = 1_800_000_000.0
SUBJECTS = ["orders.created", "orders.audit", "events.x", "_INBOX.x.y"]
POLICY = ["orders.>"]
LIMITS = FrameLimits(max_frame_bytes=4096, max_depth=4, max_header_bytes=64, max_batch=8)
GUARD = (64, 30_000, 3)  # window, skew_ms, max_senders: small, so evictions happen


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


class World:
    """Twin senders (compiled, reference) and the keys and clock one example uses."""

    def __init__(self) -> None:
        self.clock = Clock()
        fresh = Key("k1", os.urandom(32), NOW - 100, NOW - 100)
        retiring = Key("k0", os.urandom(32), NOW - 200, NOW - 200, expires_at=NOW + 20)
        self.ring = Keyring([retiring, fresh])
        stranger = Keyring([Key("kx", os.urandom(32), NOW - 100, NOW - 100)])
        senders = [  # name, keyring, epoch, seals the policy's subjects
            ("alice", self.ring, 1000, True),
            ("bob", self.ring, 1001, True),
            ("alice", self.ring, 2000, True),  # restarted: a new epoch, a new AES key
            ("alice", Keyring([retiring]), 1000, True),  # the old key only: expires
            ("mallory", stranger, 1, True),
            ("carol", self.ring, 1002, False),  # seals nothing: plain on sealed subjects
        ]
        self.twins = [self._twins(*sender) for sender in senders]
        self.history: list[tuple[str, bytes]] = []

    def _twins(self, name: str, ring: Keyring, epoch: int, seals: bool) -> tuple[Sealer, Sealer]:
        policy = SealPolicy(POLICY if seals else [])
        fast = Sealer(name, ring, clock=self.clock, epoch=epoch, limits=LIMITS, sealed=policy)
        ref = Sealer(
            name,
            ring,
            clock=self.clock,
            epoch=epoch,
            limits=LIMITS,
            sealed=SealPolicy(policy.patterns),
            seal_keys=SealKeys(backend=PyAesGcm),
        )
        ref._id_prefix = fast._id_prefix
        return fast, ref


bodies = st.one_of(
    st.binary(max_size=40),
    st.binary(min_size=300, max_size=1100),
    st.binary(min_size=4000, max_size=4100),  # around the frame limit
    st.text(max_size=20),
    st.integers(-(2**63), 2**64 - 1),
    st.none(),
    st.recursive(
        st.one_of(st.integers(), st.text(max_size=5), st.booleans()),
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)
        ),
        max_leaves=12,
    ),
)
headers = st.one_of(
    st.none(),
    st.dictionaries(st.text(min_size=1, max_size=10), st.text(max_size=70), max_size=3),
)
twin_ids = st.integers(0, 5)
subjects = st.integers(0, len(SUBJECTS) - 1)
picks = st.integers(0, 10_000)  # into the history, modulo its length
FORGERIES = ["key", "nonce", "aad", "not-bin", "compressed", "short", "garbage", "deep"]

operations = st.one_of(
    st.tuples(st.just("seal"), twin_ids, subjects, bodies, headers),
    st.tuples(st.just("seal"), twin_ids, subjects, bodies, st.none()),
    st.tuples(st.just("batch"), twin_ids, subjects, st.lists(bodies, min_size=1, max_size=3)),
    st.tuples(st.just("forge"), twin_ids, subjects, st.sampled_from(FORGERIES)),
    st.tuples(st.just("replay"), picks),
    st.tuples(st.just("resubject"), picks, subjects),
    st.tuples(st.just("tamper"), picks, st.integers(0, 10_000), st.integers(0, 7)),
    st.tuples(st.just("tick"), st.sampled_from([0.5, 5.0, 25.0])),
)


def forge(sealer: Sealer, subject: str, how: str, now: float) -> bytes:
    """A frame a key holder MACs correctly around a body sealed wrong (or not one bin)."""
    key = sealer.current_key(now)
    sealer.seq = seq = sealer.seq + 1
    flags = FLAG_SEALED | (FLAG_COMPRESSED if how == "compressed" else 0)
    head = sealer._prefix(flags, seq, now, key) + encode_item("msg", None, None)[0]
    plain = {"garbage": b"\xc1", "deep": b"\x91" * 9 + b"\xc0"}.get(how, b"\xa2hi")
    secret = bytes(32) if how == "key" else key.secret
    aad = associated_data("orders.other" if how == "aad" else subject, head)
    sealed = PyAesGcm(seal_key(secret, sealer.sender, sealer.epoch)).encrypt(
        seal_nonce(seq - 1 if how == "nonce" else seq), plain, aad
    )
    body = {"not-bin": b"\xa2hi", "short": b"\xc4\x03abc"}.get(how, pack_envelope(sealed))
    return key.mac.seal(subject, head + body)


def frame_for(world: World, op: tuple) -> tuple[str, bytes] | None:
    """The (subject, frame) an operation sends, after checking that the twins agree."""
    name, *args = op
    if name == "tick":
        world.clock.now += args[0]
        return None
    if name in ("seal", "batch", "forge"):
        (fast, ref), subject = world.twins[args[0]], SUBJECTS[args[1]]
        if name == "forge":
            try:
                frame = forge(fast, subject, args[2], world.clock())
            except KeyringError:  # this sender's only key expired: nothing to send
                return None
            ref.seq = fast.seq
        else:
            made = [made_by(fast, fast.seal, name, subject, args[2:])]
            made.append(made_by(ref, ref._seal, name, subject, args[2:]))
            assert made[0] == made[1], op
            assert (fast.seq, fast._key.kid) == (ref.seq, ref._key.kid), op
            if not isinstance(made[0], bytes):
                return None  # refused: nothing to send
            frame = made[0]
        world.history.append((subject, frame))
        return subject, frame
    if not world.history:
        return None
    subject, frame = world.history[args[0] % len(world.history)]
    if name == "replay":
        return subject, frame
    if name == "resubject":
        return SUBJECTS[args[1]], frame
    pos = args[1] % len(frame)
    return subject, frame[:pos] + bytes([frame[pos] ^ (1 << args[2])]) + frame[pos + 1 :]


def made_by(
    sealer: Sealer, seal: Callable[..., bytes], name: str, subject: str, args: list
) -> object:
    """The frame `seal` (or `seal_items`, for a batch) makes, or the error it raises."""
    try:
        if name == "batch":
            return sealer.seal_items(subject, [encode_item("msg", None, b) for b in args[0]])
        return seal(subject, args[0], "msg", args[1])
    except Exception as exc:
        return type(exc), str(exc)


def outcome(opener: Opener, subject: str, frame: bytes) -> object:
    try:
        messages = opener.open_all(subject, frame)
    except FrameRejected as rejected:
        return ("rejected", rejected.reason, rejected.detail)
    return [(m.subject, msgspec.structs.astuple(m.env)) for m in messages]


def openers(world: World) -> tuple[Opener, Opener]:
    fast = Opener(
        world.ring,
        clock=world.clock,
        limits=LIMITS,
        guard=ReplayGuard(*GUARD),
        sealed=SealPolicy(POLICY),
    )
    ref = Opener(
        world.ring,
        clock=world.clock,
        limits=LIMITS,
        guard=PyReplayGuard(*GUARD),  # the compiled open takes only the compiled guard
        sealed=SealPolicy(POLICY),
        seal_keys=SealKeys(backend=PyAesGcm),
    )
    return fast, ref


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(operations, min_size=1, max_size=50))
def test_compiled_and_reference_sealed_paths_agree(script: list[tuple]) -> None:
    world = World()
    fast, ref = openers(world)
    for op in script:
        sent = frame_for(world, op)
        if sent is None:
            continue
        assert outcome(fast, *sent) == outcome(ref, *sent), op
        assert fast.stats.as_dict() == ref.stats.as_dict(), op
        assert fast.guard.windows() == ref.guard.windows(), op


class CountingSealer(Sealer):
    reference_calls = 0

    def _seal(self, *args, **keywords):  # type: ignore[no-untyped-def]
        self.reference_calls += 1
        return super()._seal(*args, **keywords)


def test_warm_sealed_frames_take_the_compiled_path_and_rejections_the_reference() -> None:
    """Once a subject is decided and bound and the sender's AES key derived (by the first
    frame, through the reference), sealing and opening stay in C; a body that does not
    open is the reference's to count."""
    world = World()
    policy = SealPolicy(POLICY)
    send = CountingSealer("alice", world.ring, clock=world.clock, sealed=policy)
    recv = CountingOpener(world.ring, clock=world.clock, guard=ReplayGuard(), sealed=policy)
    bodies = [{"n": i, "pad": bytes(1000)} for i in range(5)]
    opened = [recv.open(SUBJECTS[0], send.seal(SUBJECTS[0], body)).body for body in bodies]
    assert opened == bodies
    compiled = CIPHER_BACKEND == "c"
    assert (send.reference_calls, recv.reference_calls) == ((1, 1) if compiled else (0, 0))
    with pytest.raises(FrameRejected) as refused:
        recv.open(SUBJECTS[0], forge(send, SUBJECTS[0], "key", world.clock()))
    assert refused.value.reason == "bad_seal"
    assert recv.stats.counts["bad_seal"] == 1
    assert recv.reference_calls == (2 if compiled else 0)
    plain = Sealer("carol", world.ring, clock=world.clock)
    for _ in range(2):
        with pytest.raises(FrameRejected, match="plain frame from 'carol'"):
            recv.open(SUBJECTS[0], plain.seal(SUBJECTS[0], "clear"))
    assert recv.stats.counts["bad_seal"] == 3
