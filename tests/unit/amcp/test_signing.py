"""HMAC-SHA256 with precomputed pads must equal RFC 4231 and the stdlib, byte for byte, in
both implementations: the compiled amcp._speedups and the hashlib fallback."""

from __future__ import annotations

import hmac
import importlib.util
import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amcp import signing
from amcp.signing import MacKey, PyHmacSha256, mac_prefix

BACKENDS = [PyHmacSha256]
if importlib.util.find_spec("amcp._speedups") is not None:  # built where a compiler was
    from amcp._speedups import HmacSha256

    BACKENDS.append(HmacSha256)
backends = pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.__module__)

# RFC 4231 section 4: (key, data, HMAC-SHA256); case 5 is a truncated-output case.
RFC4231 = [
    (b"\x0b" * 20, b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (
        b"Jefe",
        b"what do ya want for nothing?",
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    ),
    (
        b"\xaa" * 20,
        b"\xdd" * 50,
        "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
    ),
    (
        bytes(range(1, 26)),
        b"\xcd" * 50,
        "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
    ),
    (b"\x0c" * 20, b"Test With Truncation", "a3b6167473100ee06e0c796c2955552b"),
    (
        b"\xaa" * 131,
        b"Test Using Larger Than Block-Size Key - Hash Key First",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    ),
    (
        b"\xaa" * 131,
        b"This is a test using a larger than block-size key and a larger than block-size "
        b"data. The key needs to be hashed before being used by the HMAC algorithm.",
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
    ),
]


@backends
def test_rfc4231_vectors(backend) -> None:
    for key, data, expected in RFC4231:
        assert MacKey(key, backend=backend).digest(data).hex()[: len(expected)] == expected


@backends
@given(
    st.binary(min_size=16, max_size=200),
    st.binary(max_size=2000),
    st.from_regex(r"[a-z][a-z0-9]{0,8}(\.[a-z0-9]{1,8}){0,3}", fullmatch=True),
)
def test_sign_equals_stdlib_hmac_over_prefixed_input(
    backend, key: bytes, data: bytes, subject: str
) -> None:
    mac = MacKey(key, backend=backend)
    expected = hmac.digest(key, mac_prefix(subject) + data, "sha256")
    assert mac.sign(subject, data) == expected
    assert mac.seal(subject, data) == data + expected
    assert mac.verify(subject, data, expected)
    assert mac.verify(subject, memoryview(data), memoryview(expected))
    assert not mac.verify(subject, data + b"x", expected)
    assert not mac.verify(subject, data, expected[:-1])  # a short tag never matches


@backends
def test_bad_arguments_raise_type_errors_not_crashes(backend) -> None:
    state = backend(b"k" * 32)
    with pytest.raises(TypeError):
        state.sign("text is not bytes")
    with pytest.raises(TypeError):
        state.verify(b"data", None)
    with pytest.raises(TypeError):
        backend("secret as text")


def test_no_speedups_env_forces_the_hashlib_backend() -> None:
    env = dict(os.environ, AMCP_NO_SPEEDUPS="1")
    out = subprocess.run(
        [sys.executable, "-c", "import amcp.signing as s; print(s.BACKEND)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "python"
    in_use = signing.BACKEND
    built = len(BACKENDS) == 2 and not os.environ.get("AMCP_NO_SPEEDUPS")
    assert in_use == ("c" if built else "python")


@backends
def test_prefix_binds_the_subject_length_so_subjects_cannot_be_shifted(backend) -> None:
    mac = MacKey(b"k" * 32, backend=backend)
    assert mac_prefix("a.b") == b"amcp1\x00\x03a.b"
    assert mac.sign("a.b", b"c") != mac.sign("a.bc", b"")
