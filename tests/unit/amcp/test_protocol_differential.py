"""The compiled Opener.open against the Python reference Opener._open.

Two openers see the same random sequence of frames: valid ones from several senders and
epochs, replays, reordered and duplicate seqs, stale and future timestamps, tampered,
truncated, random and oversized frames, frames re-published to another subject, unknown
and expiring keys, headers and bodies over the limits, batches and compressed bodies. One
opener has the compiled replay guard, so its `open` takes the compiled path; the other has
the Python guard, so its `open` hands every frame to `_open`. Both must accept the same
messages, reject with the same reason and detail, count the same, and leave the same replay
windows. (Under AMCP_NO_SPEEDUPS=1 both run `_open`, one of them on the compiled guard.)
"""

from __future__ import annotations

import importlib.util
import os

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amcp import FrameLimits, FrameRejected, Key, Keyring, Opener, Sealer
from amcp.errors import KeyringError
from amcp.framebody import encode_item
from amcp.replay import PyReplayGuard

if importlib.util.find_spec("amcp._speedups") is not None:
    from amcp._speedups import ReplayGuard as CReplayGuard
else:
    CReplayGuard = PyReplayGuard

NOW = 1_800_000_000.0
SUBJECTS = ["orders.created", "orders.audit", "_INBOX.x.y"]
SENDERS = ["alice", "bob", "carol"]
LIMITS = FrameLimits(max_frame_bytes=2048, max_depth=4, max_header_bytes=64, max_batch=8)
GUARD = (64, 30_000, 2)  # window, skew_ms, max_senders: small, so all edges are reached


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class World:
    """The senders, keys and clock one example sends frames with."""

    def __init__(self) -> None:
        self.clock = Clock()
        fresh = Key("k1", os.urandom(32), NOW - 100, NOW - 100)
        retiring = Key("k0", os.urandom(32), NOW - 200, NOW - 200, expires_at=NOW + 20)
        self.ring = Keyring([retiring, fresh])
        self.old_ring = Keyring([retiring])
        self.stranger = Keyring([Key("kx", os.urandom(32), NOW - 100, NOW - 100)])
        self.drift = 0.0
        self.sealers = [
            Sealer(name, self.ring, clock=self._drifting, epoch=1000 + i)
            for i, name in enumerate(SENDERS)
        ]
        self.sealers.append(Sealer("alice", self.ring, clock=self.clock, epoch=2000))  # restart
        self.sealers.append(Sealer("bob", self.ring, clock=self.clock, epoch=5))  # old epoch
        self.sealers.append(Sealer("alice", self.old_ring, clock=self.clock, epoch=1000))
        self.sealers.append(Sealer("mallory", self.stranger, clock=self.clock, epoch=1))
        self.sealers.append(
            Sealer("carol", self.ring, clock=self.clock, epoch=1002, compress_threshold=64)
        )
        self.history: list[tuple[str, bytes]] = []

    def _drifting(self) -> float:
        return self.clock.now + self.drift


bodies = st.one_of(
    st.binary(max_size=80),
    st.binary(min_size=1900, max_size=2100),  # around the frame limit
    st.text(max_size=20),
    st.integers(-(2**63), 2**64 - 1),
    st.none(),
    st.just("x" * 300),  # compressible
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
# Bodies a stranger or an insider builds by hand: many empty arrays or maps, deep nesting,
# extension types (the timestamp, -1, included), reserved bytes, trailing values, nothing.
hostile_bodies = st.one_of(
    st.integers(0, 600).map(lambda n: b"\xdc" + n.to_bytes(2, "big") + b"\x90" * n),
    st.integers(0, 300).map(lambda n: b"\xde" + n.to_bytes(2, "big") + b"\x00\x80" * n),
    st.integers(1, 80).map(lambda n: b"\x91" * n + b"\xc0"),
    st.sampled_from(
        [b"\xd6\xff\x00\x00\x00\x00", b"\xc7\x01\x05x", b"\xc0\xc0", b"\xc1", b"", b"\x92\xc0"]
    ),
    st.binary(max_size=30),
)
sealer_ids = st.integers(0, 7)
subjects = st.integers(0, len(SUBJECTS) - 1)
picks = st.one_of(st.just(-1), st.integers(0, 10_000))  # into the history, modulo its length

operations = st.one_of(
    st.tuples(st.just("seal"), sealer_ids, subjects, bodies, headers),
    st.tuples(st.just("seal"), sealer_ids, subjects, st.binary(max_size=40), st.none()),
    st.tuples(st.just("hold"), sealer_ids, subjects, st.binary(max_size=40), st.none()),
    st.tuples(st.just("reorder"), sealer_ids, subjects, st.integers(-3, 80)),
    st.tuples(st.just("batch"), sealer_ids, subjects, st.lists(bodies, min_size=1, max_size=4)),
    st.tuples(st.just("replay"), picks),
    st.tuples(st.just("resubject"), picks, subjects),
    st.tuples(st.just("tamper"), picks, st.integers(0, 10_000), st.integers(0, 7)),
    st.tuples(st.just("tamper"), picks, st.integers(-40, -1), st.integers(0, 7)),  # tag, body
    st.tuples(st.just("truncate"), picks, st.integers(0, 10_000)),
    st.tuples(st.just("random"), st.binary(max_size=120)),
    st.tuples(
        st.just("hostile"),
        sealer_ids,
        subjects,
        hostile_bodies,
        st.booleans(),  # signed with the sender's key, or a wrong tag
        st.sampled_from([b"\x9b", b"\x9c", b"\x9a", b"\xdc\x00\x0b"]),  # fields: 11, 12, 10
    ),
    st.tuples(st.just("drift"), st.sampled_from([0.0, -29.0, -31.0, 31.0, 29.5])),
    st.tuples(st.just("tick"), st.sampled_from([0.5, 5.0, 25.0])),
)


def frame_for(world: World, op: tuple) -> tuple[str, bytes] | None:
    """The (subject, frame) an operation sends, or None if it only changes the world."""
    name, *args = op
    history = world.history
    if name in ("seal", "hold", "reorder", "batch"):
        sealer, subject = world.sealers[args[0]], SUBJECTS[args[1]]
        try:
            if name in ("seal", "hold"):
                frame = sealer.seal(subject, args[2], headers=args[3])
            elif name == "reorder":  # a seq already used or skipped: new content, old number
                frame = sealer.seal(subject, "again", seq=max(0, sealer.seq - args[2]))
            else:
                frame = sealer.seal_items(subject, [encode_item("msg", None, b) for b in args[2]])
        except Exception:  # EncodeError: nothing to send
            return None
        history.append((subject, frame))
        return None if name == "hold" else (subject, frame)  # held: sent later, or altered
    if name == "hostile":
        sealer, subject = world.sealers[args[0]], SUBJECTS[args[1]]
        raw, signed, array = args[2:]
        now = world.clock()
        try:
            key = sealer.current_key(now)
        except KeyringError:  # this sender's only key expired: nothing to send
            return None
        sealer.seq += 1
        head = sealer._prefix(0, sealer.seq, now, key)[1:] + encode_item("msg", None, None)[0]
        envelope = array + head + raw + (b"\xc0" if array == b"\x9c" else b"")
        frame = key.mac.seal(subject, envelope) if signed else envelope + bytes(32)
        history.append((subject, frame))
        return subject, frame
    if name == "drift":
        world.drift = args[0]
        return None
    if name == "tick":
        world.clock.now += args[0]
        return None
    if name == "random":
        return SUBJECTS[0], args[0]
    if not history:
        return None
    subject, frame = history[args[0] % len(history)]
    if name == "replay":
        return subject, frame
    if name == "resubject":
        return SUBJECTS[args[1]], frame
    if name == "tamper":
        pos = args[1] % len(frame)
        return subject, frame[:pos] + bytes([frame[pos] ^ (1 << args[2])]) + frame[pos + 1 :]
    return subject, frame[: args[1] % len(frame)]  # truncate


def outcome(opener: Opener, subject: str, frame: bytes) -> object:
    try:
        messages = opener.open_all(subject, frame)
    except FrameRejected as rejected:
        return ("rejected", rejected.reason, rejected.detail)
    return [(m.subject, m.bus, msgspec.structs.astuple(m.env)) for m in messages]


def openers(world: World) -> tuple[Opener, Opener]:
    def make(guard: object) -> Opener:
        return Opener(world.ring, clock=world.clock, limits=LIMITS, guard=guard, owner="bus")

    return make(CReplayGuard(*GUARD)), make(PyReplayGuard(*GUARD))


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(operations, min_size=1, max_size=60))
def test_compiled_and_reference_open_agree(script: list[tuple]) -> None:
    world = World()
    fast, ref = openers(world)
    for op in script:
        sent = frame_for(world, op)
        if sent is None:
            continue
        assert outcome(fast, *sent) == outcome(ref, *sent), op
        assert fast.stats.as_dict() == ref.stats.as_dict(), op
        assert fast.guard.windows() == ref.guard.windows(), op
        assert fast.guard.evicted_floor_ms == ref.guard.evicted_floor_ms, op


class CountingOpener(Opener):
    """Counts the frames the reference path handled."""

    reference_calls = 0

    def _open(self, subject: str, frame: bytes):  # type: ignore[no-untyped-def]
        self.reference_calls += 1
        return super()._open(subject, frame)


def test_plain_frames_take_the_compiled_path_and_the_rest_the_reference() -> None:
    world = World()
    opener = CountingOpener(world.ring, clock=world.clock, guard=CReplayGuard())
    sealer = world.sealers[0]
    frames = [sealer.seal(SUBJECTS[0], body) for body in (b"x", {"a": [1, {"b": 2}]}, "s")]
    frames.append(sealer.seal(SUBJECTS[0], "with headers", headers={"reply-to": "_INBOX.1"}))
    for frame in frames:
        assert opener.open(SUBJECTS[0], frame).sender == "alice"
    assert opener.reference_calls == 0  # compiled: never needed; pure: `open` is `_open`
    with pytest.raises(FrameRejected):  # a rejection is the reference's to explain
        opener.open(SUBJECTS[0], frames[0])
    compiled = Opener.open is not Opener._open
    assert opener.reference_calls == (1 if compiled else 0)
    assert opener.stats.as_dict()["replay"] == 1


def test_rebinding_attributes_reaches_the_compiled_path() -> None:
    """Opener's attributes are the compiled core's: assigning a keyring, guard or clock
    takes effect at once (tests and key reloads do this)."""
    world = World()
    opener = Opener(world.stranger, clock=world.clock, guard=CReplayGuard())
    frame = world.sealers[0].seal(SUBJECTS[0], "hello")
    with pytest.raises(FrameRejected, match="unknown"):
        opener.open(SUBJECTS[0], frame)
    opener.keyring = world.ring
    opener.clock = lambda: NOW + 3600  # an hour later: stale
    with pytest.raises(FrameRejected) as info:
        opener.open(SUBJECTS[0], frame)
    assert info.value.reason == "stale"
    opener.clock = world.clock
    assert opener.open(SUBJECTS[0], frame).body == "hello"
    opener.guard = CReplayGuard()  # a fresh window accepts it again
    assert opener.open(SUBJECTS[0], frame).body == "hello"


class UnEncodable:
    """A body msgpack cannot carry."""


plain_seals = st.tuples(
    st.just("seal"),
    subjects,
    st.one_of(bodies, st.sampled_from([UnEncodable(), 2**64, b"x" * 2050])),
    st.sampled_from(["msg", "req", "k" * 128]),
    st.one_of(headers, st.just({})),
)
seal_ops = st.one_of(
    plain_seals,
    plain_seals,
    plain_seals,
    st.tuples(st.just("keyword"), subjects, st.binary(max_size=20)),
    st.tuples(st.just("flags"), subjects, st.sampled_from([0, 2])),
    st.tuples(st.just("seq"), subjects, st.integers(0, 2**64 - 1)),
    st.tuples(st.just("tick"), st.sampled_from([0.3, 0.3, 0.7, 2.5])),
    st.tuples(st.just("rotate")),
)


def sealed(sealer: Sealer, op: tuple, seal: object) -> object:
    name, *args = op
    subject = SUBJECTS[args[0]] if args and isinstance(args[0], int) else None
    try:
        if name == "seal":
            return seal(subject, args[1], args[2], args[3])
        if name == "keyword":
            return seal(subject, args[1], kind="rep", headers={"a": "b"})
        if name == "flags":
            return seal(subject, "f", "msg", None, args[1])
        return seal(subject, "s", seq=args[1])
    except Exception as exc:
        return type(exc), str(exc)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([None, 64, 5000]), st.lists(seal_ops, min_size=1, max_size=40))
def test_compiled_and_reference_seal_agree(threshold: int | None, script: list[tuple]) -> None:
    """The compiled Sealer.seal and the reference Sealer._seal, on twin sealers, give the
    same frames byte for byte, the same errors, and number messages alike."""
    world = World()
    limits = FrameLimits(max_frame_bytes=2048)
    fast, ref = (
        Sealer(
            "alice",
            world.ring,
            clock=world.clock,
            epoch=7,
            limits=limits,
            compress_threshold=threshold,
        )
        for _ in range(2)
    )
    ref._id_prefix = fast._id_prefix
    for subject in SUBJECTS:  # bound to the key: the compiled path is open to them
        assert fast.seal(subject, "warm-up") == ref._seal(subject, "warm-up")
    for op in script:
        if op[0] == "tick":
            world.clock.now += op[1]
        elif op[0] == "rotate":
            world.ring.rotate(world.clock.now, activate_after=0.5)
        else:
            assert sealed(fast, op, fast.seal) == sealed(ref, op, ref._seal), op
            assert (fast.seq, fast._key.kid) == (ref.seq, ref._key.kid), op
