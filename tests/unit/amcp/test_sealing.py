"""Sealed bodies (amcp.sealing, docs/PROTOCOL.md "Sealed body"): encrypt then MAC. A
tampered or downgraded frame fails the MAC; a frame a key holder MACed correctly around a
body sealed under the wrong key, nonce or associated data fails decryption (`bad_seal`);
a plain frame on a sealed subject is refused; no (key, nonce) pair repeats.

`pair` warms what the compiled seal and open need (the subjects decided and bound, the
AES key derived), so with the extension built these tests run the C path; the last test
runs them all again under AMCP_NO_SPEEDUPS=1, on the pure-Python reference."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from amcp import Key, Keyring, Opener, Sealer
from amcp.envelope import FLAG_COMPRESSED, FLAG_SEALED, pack_envelope
from amcp.errors import ConfigError, FrameRejected
from amcp.framebody import encode_item
from amcp.replay import ReplayGuard
from amcp.sealing import (
    CIPHER_BACKEND,
    SEAL_ENV,
    AesGcm,
    PyAesGcm,
    SealKeys,
    SealPolicy,
    associated_data,
    seal_key,
    seal_nonce,
    seal_patterns_from_env,
)
from tests.support import factories

NOW = 1_795_238_893.5
SUBJECT = "orders.new"
POLICY = ["orders.>"]


def clock() -> float:
    return NOW


def pair(ring: Keyring, patterns: list[str] = POLICY, **sealer: object) -> tuple[Sealer, Opener]:
    """A sender and a receiver sharing a cache of AES keys (as a Bus's do), warmed for the
    subjects these tests use, so that no first frame is left to the reference."""
    keys = SealKeys()
    send = Sealer("alice", ring, clock=clock, sealed=SealPolicy(patterns), seal_keys=keys, **sealer)  # type: ignore[arg-type]
    recv = Opener(ring, clock=clock, sealed=SealPolicy(patterns), seal_keys=keys)
    key = send.current_key(NOW)
    keys.cipher(key, send.sender, send.epoch)
    for subject in (SUBJECT, "orders.x.y", "other.x"):
        send.sealed(subject)
        recv.sealed(subject)
        key.mac.sign(subject, b"")  # binds the subject, as a first frame would
    return send, recv


def refused(opener: Opener, subject: str, frame: bytes) -> str:
    with pytest.raises(FrameRejected) as caught:
        opener.open(subject, frame)
    return caught.value.reason


def forge(
    sealer: Sealer,
    body: object,
    *,
    secret: bytes | None = None,
    nonce_seq: int | None = None,
    aad_subject: str = SUBJECT,
    subject: str = SUBJECT,
) -> bytes:
    """What a key holder can build by hand: a frame MACed correctly around a body sealed
    with another secret, another seq's nonce or another frame's associated data."""
    key = sealer.current_key(NOW)
    sealer.seq = seq = sealer.seq + 1
    head = sealer._prefix(FLAG_SEALED, seq, NOW, key) + encode_item("msg", None, None)[0]
    cipher = AESGCM(seal_key(secret or key.secret, sealer.sender, sealer.epoch))
    aad = associated_data(aad_subject, head)
    sealed = cipher.encrypt(seal_nonce(seq if nonce_seq is None else nonce_seq), body, aad)
    return key.mac.seal(subject, head + pack_envelope(sealed))


def test_a_sealed_body_round_trips_and_is_not_on_the_wire() -> None:
    send, recv = pair(factories.ring(NOW))
    frame = send.seal(SUBJECT, {"card": "MARKER-4242"}, headers={"h": "v"})
    assert b"MARKER-4242" not in frame
    msg = recv.open(SUBJECT, frame)
    assert (msg.body, msg.headers, msg.env.flags) == ({"card": "MARKER-4242"}, {"h": "v"}, 4)


@pytest.mark.parametrize("header", [0, 200, 3000])  # associated data on and off the stack
def test_sealed_frames_round_trip_whatever_the_size_of_the_head(header: int) -> None:
    send, recv = pair(factories.ring(NOW))
    twin = Sealer("alice", send.keyring, clock=clock, epoch=send.epoch, sealed=send.sealed)
    twin._id_prefix = send._id_prefix
    headers = {"h": "v" * header} if header else None
    for n in range(3):
        frame = send.seal(SUBJECT, {"n": n}, "msg", headers)  # by position: the C path's
        twin.seq = send.seq - 1
        assert frame == twin._seal(SUBJECT, {"n": n}, headers=headers)  # the reference's
        msg = recv.open(SUBJECT, frame)
        assert (msg.body, msg.headers) == ({"n": n}, headers or {})


def test_a_batch_on_a_sealed_subject_is_sealed_as_one_body() -> None:
    send, recv = pair(factories.ring(NOW))
    items = [encode_item("msg", None, f"MARKER-{i}") for i in range(3)]
    frame = send.seal_items(SUBJECT, items)
    assert b"MARKER" not in frame
    assert [m.body for m in recv.open_all(SUBJECT, frame)] == ["MARKER-0", "MARKER-1", "MARKER-2"]
    assert recv.open_all(SUBJECT, send.seal_items(SUBJECT, items[:1]))[0].body == "MARKER-0"
    assert send.seq == 5  # the batch took 1..4 (frame and inner seqs), the lone frame 5


def test_a_sealed_subject_is_never_compressed() -> None:
    send, recv = pair(factories.ring(NOW), compress_threshold=1)
    frame = send.seal(SUBJECT, "x" * 4000)
    assert recv.open(SUBJECT, frame).body == "x" * 4000
    assert len(frame) > 4000  # encrypted, not compressed: the length is the plaintext's


def test_other_subjects_go_out_byte_for_byte_as_without_sealing() -> None:
    ring = factories.ring(NOW)
    sealing = Sealer("alice", ring, clock=clock, epoch=7, sealed=SealPolicy(POLICY))
    plain = Sealer("alice", ring, clock=clock, epoch=7)
    plain._id_prefix = sealing._id_prefix
    assert sealing.seal("other.x", {"a": 1}) == plain.seal("other.x", {"a": 1})
    recv = Opener(ring, clock=clock, sealed=SealPolicy(POLICY))
    assert recv.open("other.x", plain.seal("other.x", 2)).body == 2


def test_any_receiver_with_the_keyring_opens_a_sealed_frame() -> None:
    ring = factories.ring(NOW)
    send, _ = pair(ring)
    assert Opener(ring, clock=clock).open(SUBJECT, send.seal(SUBJECT, "hi")).body == "hi"


def test_a_plain_frame_on_a_sealed_subject_is_refused_and_counted() -> None:
    ring = factories.ring(NOW)
    _, recv = pair(ring)
    plain = Sealer("mallory", ring, clock=clock)
    assert refused(recv, "orders.x.y", plain.seal("orders.x.y", "clear")) == "bad_seal"
    assert recv.stats.counts["bad_seal"] == 1


def test_a_tampered_ciphertext_fails_the_mac_before_decryption() -> None:
    send, recv = pair(factories.ring(NOW))
    frame = bytearray(send.seal(SUBJECT, "payload"))
    frame[-40] ^= 1  # inside the ciphertext (the MAC is the last 32 bytes)
    assert refused(recv, SUBJECT, bytes(frame)) == "bad_signature"


def test_stripping_the_sealed_flag_fails_the_mac() -> None:
    send, _ = pair(factories.ring(NOW))
    frame = bytearray(send.seal(SUBJECT, "payload"))
    assert frame[2] == FLAG_SEALED  # 0x9b (an array of 11), 0x01 (the version), the flags
    frame[2] = 0
    assert refused(Opener(send.keyring, clock=clock), SUBJECT, bytes(frame)) == "bad_signature"


def test_a_body_sealed_under_another_key_is_bad_seal() -> None:
    send, recv = pair(factories.ring(NOW))
    frame = forge(send, b"\xa2hi", secret=bytes(32))
    assert refused(recv, SUBJECT, frame) == "bad_seal"
    assert recv.stats.counts["bad_seal"] == 1
    assert recv.open(SUBJECT, forge(send, b"\xa2hi")).body == "hi"  # the same, sealed right


def test_a_reused_nonce_is_bad_seal() -> None:
    send, recv = pair(factories.ring(NOW))
    recv.open(SUBJECT, send.seal(SUBJECT, "first"))  # seq 1
    frame = forge(send, b"\xa2hi", nonce_seq=1)  # seq 2 sealed with seq 1's nonce
    assert refused(recv, SUBJECT, frame) == "bad_seal"


def test_a_body_sealed_for_another_subject_is_bad_seal() -> None:
    send, recv = pair(factories.ring(NOW))
    assert refused(recv, SUBJECT, forge(send, b"\xa2hi", aad_subject="orders.old")) == "bad_seal"


def test_a_sealed_body_that_is_not_bin_or_also_compressed_is_malformed() -> None:
    send, recv = pair(factories.ring(NOW))
    key = send.current_key(NOW)
    head = send._prefix(FLAG_SEALED, 9, NOW, key) + encode_item("msg", None, None)[0]
    assert refused(recv, SUBJECT, key.mac.seal(SUBJECT, head + b"\xa2hi")) == "malformed"
    head = send._prefix(FLAG_SEALED | FLAG_COMPRESSED, 10, NOW, key)
    head += encode_item("msg", None, None)[0]
    assert refused(recv, SUBJECT, key.mac.seal(SUBJECT, head + b"\xc4\x01\x00")) == "malformed"


_kinds = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=8)
_u64 = st.integers(0, 2**64 - 1)
_headers = st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=3)


@given(
    kinds=st.lists(_kinds, min_size=2, max_size=2),
    headers=st.lists(_headers, min_size=2, max_size=2),
    sealed_at=st.sampled_from([NOW, NOW - 1, 0.0]),
)
def test_the_associated_data_binds_the_fixed_fields(
    kinds: list[str], headers: list[dict[str, str]], sealed_at: float
) -> None:
    """A body sealed for one envelope head (timestamp, kind, headers) does not open in a
    frame with another, although that frame's MAC is right: the head is the associated data."""
    send, recv = pair(factories.ring(NOW))
    key = send.current_key(NOW)
    send.seq = seq = send.seq + 1
    heads = [
        send._prefix(FLAG_SEALED, seq, at, key) + encode_item(kind, header, None)[0]
        for kind, header, at in zip(kinds, headers, [sealed_at, NOW], strict=True)
    ]
    cipher = AESGCM(seal_key(key.secret, "alice", send.epoch))
    sealed = cipher.encrypt(seal_nonce(seq), b"\xc0", associated_data(SUBJECT, heads[0]))
    frame = key.mac.seal(SUBJECT, heads[1] + pack_envelope(sealed))
    if heads[0] == heads[1]:
        assert recv.open(SUBJECT, frame).body is None
    else:
        assert refused(recv, SUBJECT, frame) == "bad_seal"


@given(
    st.lists(
        st.tuples(st.text(min_size=1, max_size=6), _u64, _u64),
        min_size=2,
        max_size=12,
        unique=True,
    )
)
def test_no_key_and_nonce_pair_repeats_across_senders_epochs_and_seqs(
    frames: list[tuple[str, int, int]],
) -> None:
    secret = bytes(range(32))
    pairs = {(seal_key(secret, s, e), seal_nonce(q)) for s, e, q in frames}
    assert len(pairs) == len(frames)
    assert all(key != secret for key, _ in pairs)  # never the MAC key itself


@pytest.mark.parametrize(
    ("pattern", "subject", "hit"),
    [
        ("orders.>", "orders.new", True),
        ("orders.>", "orders.a.b", True),
        ("orders.>", "orders", False),
        ("orders.*", "orders.new", True),
        ("orders.*", "orders.a.b", False),
        ("*.new", "orders.new", True),
        ("orders.new", "orders.new", True),
        ("orders.new", "orders.old", False),
        (">", "anything.at.all", True),
    ],
)
def test_patterns_match_like_nats(pattern: str, subject: str, hit: bool) -> None:
    assert SealPolicy([pattern])(subject) is hit


def test_patterns_come_from_flags_else_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SEAL_ENV, "a.>, b.*")
    assert seal_patterns_from_env(None) == ("a.>", "b.*")
    assert seal_patterns_from_env(["c.d"]) == ("c.d",)
    monkeypatch.setenv(SEAL_ENV, "a..b")
    with pytest.raises(ConfigError, match=r"AMCP_SEAL.*empty token"):
        seal_patterns_from_env(None)


def test_after_rotation_the_new_key_seals_and_frames_of_the_old_one_still_open() -> None:
    old = Key("old", bytes(32), NOW - 100, NOW - 100)
    new = Key("new", bytes(range(32)), NOW - 100, NOW + 5)  # signs and seals from NOW + 5
    ring = Keyring([old, new])
    before = Sealer("alice", ring, clock=clock, epoch=1, sealed=SealPolicy(POLICY))
    after = Sealer("alice", ring, clock=lambda: NOW + 10, epoch=1, sealed=SealPolicy(POLICY))
    after._id_prefix = before._id_prefix
    frames = [before.seal(SUBJECT, "same"), after.seal(SUBJECT, "same")]  # both seq 1
    opened = [  # a receiver each: one would refuse the second (sender, epoch, seq) as a replay
        Opener(ring, clock=lambda: NOW + 10, guard=ReplayGuard()).open(SUBJECT, frame)
        for frame in frames
    ]
    assert [(m.env.kid, m.body) for m in opened] == [("old", "same"), ("new", "same")]


BACKENDS = [PyAesGcm] + ([AesGcm] if AesGcm is not PyAesGcm else [])


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.__module__)
@given(key=st.binary(min_size=32, max_size=32), data=st.binary(max_size=2100), aad=st.binary())
def test_each_cipher_backend_is_aes_gcm(backend: type, key: bytes, data: bytes, aad: bytes) -> None:
    """The same bytes as cryptography's AESGCM; what does not open is None, not an error."""
    nonce = seal_nonce(len(data))
    sealed = backend(key).encrypt(nonce, data, aad)
    assert sealed == AESGCM(key).encrypt(nonce, data, aad)
    assert backend(key).decrypt(nonce, sealed, aad) == data
    tampered = bytearray(sealed)
    tampered[len(data) // 2] ^= 1
    assert backend(key).decrypt(nonce, bytes(tampered), aad) is None
    assert backend(key).decrypt(seal_nonce(len(data) + 1), sealed, aad) is None
    assert backend(key).decrypt(nonce, sealed, aad + b"x") is None
    assert backend(key).decrypt(nonce, sealed[:15], aad) is None


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.__module__)
def test_a_cipher_refuses_bad_arguments_with_an_error_not_a_crash(backend: type) -> None:
    with pytest.raises((TypeError, ValueError)):
        backend(bytes(31))
    with pytest.raises(TypeError):
        backend("k" * 32)
    cipher = backend(bytes(32))
    with pytest.raises(ValueError):
        cipher.encrypt(bytes(8), b"data", b"")
    with pytest.raises(TypeError):
        cipher.decrypt(bytes(12), "text", b"")


def test_the_compiled_cipher_is_in_use_when_built_and_these_tests_pass_without_it() -> None:
    """Under AMCP_NO_SPEEDUPS=1 the sealing tests run again on the reference: PyAesGcm,
    Sealer._seal and Opener._open (there, this test only checks the backend)."""
    forced = bool(os.environ.get("AMCP_NO_SPEEDUPS"))
    built = compiled_aes_gcm_built()
    assert ("c" if built and not forced else "python") == CIPHER_BACKEND
    if forced:
        return
    here = Path(__file__).resolve()
    tests = [
        str(here.with_name(f"test_sealing{part}.py")) for part in ("", "_vectors", "_differential")
    ]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
        env=dict(os.environ, AMCP_NO_SPEEDUPS="1"),
        cwd=here.parents[3],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:]


def compiled_aes_gcm_built() -> bool:
    try:
        from amcp._speedups import AesGcm as _built  # noqa: F401
    except ImportError:
        return False
    return True
