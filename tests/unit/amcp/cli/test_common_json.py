"""The CLI's JSON argument parser agrees with the wire: what it accepts, a receiver opens;
what a receiver would refuse, it refuses with a one-line error. No I/O."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amcp import Keyring
from amcp.cli.common import parse_json_arg
from amcp.envelope import FrameLimits
from amcp.errors import ConfigError, EncodeError, FrameRejected
from amcp.protocol import Opener, Sealer

LIMITS = FrameLimits()


def nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


# NaN and Infinity are left out: the wire carries them, but they are not JSON, and the CLI
# refuses them (as CRDT values and vote payloads do)
FINITE = st.floats(allow_nan=False, allow_infinity=False)
SCALARS = st.none() | st.booleans() | st.integers() | FINITE | st.text()
VALUES = st.recursive(
    SCALARS | st.integers(0, 2 * LIMITS.max_depth).map(lambda n: nested(n)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=20,
)
RING = Keyring.generate()


def round_trip(value: Any) -> Any:
    """What a receiver makes of `value` sent as a body (FrameRejected if it refuses it)."""
    opener = Opener(RING)  # first: a receiver may refuse frames signed before it started
    frame = Sealer("cli", RING).seal("s.x", value, "msg")
    (message,) = opener.open_all("s.x", frame)
    return message.body


@given(VALUES)
def test_the_cli_accepts_exactly_what_a_receiver_opens(value: Any) -> None:
    """Differential: parse_json_arg refuses a value iff the wire would refuse it."""
    try:
        parsed = parse_json_arg(json.dumps(value))
    except ConfigError:
        with pytest.raises((FrameRejected, EncodeError)):
            round_trip(json.loads(json.dumps(value)))
    else:
        assert parsed == value
        assert round_trip(parsed) == value


@given(st.integers(min_value=1 << 64) | st.integers(max_value=-(1 << 63) - 1))
def test_integers_msgpack_cannot_carry_are_refused(n: int) -> None:
    with pytest.raises(ConfigError, match="64-bit range"):
        parse_json_arg(f"[{n}]")


@pytest.mark.parametrize("levels", [LIMITS.max_depth + 1, 60_000])
def test_too_deep_is_refused_and_the_limit_is_exact(levels: int) -> None:
    deepest = nested(LIMITS.max_depth)
    assert round_trip(parse_json_arg(json.dumps(deepest))) == deepest
    with pytest.raises(ConfigError, match="nested too deep"):
        parse_json_arg("[" * levels + "]" * levels)


def test_the_wrapping_message_counts_against_the_depth() -> None:
    inner = json.dumps(nested(LIMITS.max_depth - 1))
    assert parse_json_arg(inner, wrap=lambda v: {"input": v}) == nested(LIMITS.max_depth - 1)
    with pytest.raises(ConfigError, match="nested too deep"):
        parse_json_arg(inner, wrap=lambda v: {"call": {"input": v}})


def test_a_value_over_the_frame_limit_is_refused() -> None:
    text = json.dumps("x" * LIMITS.max_frame_bytes)
    with pytest.raises(ConfigError, match="frame limit"):
        parse_json_arg(text, "JSON body")


def test_or_text_keeps_plain_text_but_not_unsendable_json() -> None:
    assert parse_json_arg("hello world", or_text=True) == "hello world"
    with pytest.raises(ConfigError, match="64-bit range"):
        parse_json_arg("1" * 5000, or_text=True)
