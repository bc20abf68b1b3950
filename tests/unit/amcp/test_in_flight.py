"""A frame stamped just before its receiver started is refused as stale all the same, but
told apart from a replay for the log (Opener.in_flight): a CLI that starts while agents
talk must not print a warning for the hello that crossed its subscription."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amcp import FrameRejected, Keyring, Opener, Reason, Sealer
from amcp.protocol import IN_FLIGHT_MS
from amcp.replay import live_guard
from tests.support import factories

SUBJECT = "amcp.test.ctx.hello"
START = 1_800_000_000.0  # the receiver starts here (seconds)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def refused(stamped_ms: int, arrives_ms: int, ring: Keyring) -> tuple[str, bool]:
    """(reason, in flight) of a frame stamped `stamped_ms` after the receiver's start (may be
    negative) and opened `arrives_ms` after its stamp."""
    sealer = Sealer("s2-1", ring, clock=lambda: START + stamped_ms / 1000)
    frame = sealer.seal(SUBJECT, {"hello": 1})
    clock = Clock(START + (stamped_ms + arrives_ms) / 1000)
    opener = Opener(ring, clock=clock, guard=live_guard(1024, 30_000, 64, START))
    with pytest.raises(FrameRejected) as info:
        opener.open(SUBJECT, frame)
    return info.value.reason, opener.in_flight(info.value, frame)


RING = factories.ring(START - 60)


@given(before=st.integers(1, IN_FLIGHT_MS - 2), transit=st.integers(0, IN_FLIGHT_MS - 1))
def test_a_frame_stamped_just_before_the_start_is_stale_and_in_flight(
    before: int, transit: int
) -> None:
    assert refused(-before, transit, RING) == (Reason.STALE, True)


@given(before=st.integers(IN_FLIGHT_MS + 1, 29_000))
def test_a_frame_stamped_long_before_the_start_is_a_stale_one_to_warn_of(before: int) -> None:
    assert refused(-before, before + 10, RING) == (Reason.STALE, False)


@given(before=st.integers(1, IN_FLIGHT_MS - 2), late=st.integers(IN_FLIGHT_MS, 29_000))
def test_a_frame_that_arrives_long_after_its_stamp_is_not_in_flight(
    before: int, late: int
) -> None:
    assert refused(-before, late, RING) == (Reason.STALE, False)


def test_only_a_stale_rejection_is_in_flight() -> None:
    sealer = Sealer("s2-1", RING, clock=lambda: START + 1)
    frame = sealer.seal(SUBJECT, {"hello": 1})
    opener = Opener(RING, clock=Clock(START + 1.001), guard=live_guard(1024, 30_000, 64, START))
    opener.open(SUBJECT, frame)
    with pytest.raises(FrameRejected) as info:
        opener.open(SUBJECT, frame)  # the same frame again, after the start: a replay
    assert info.value.reason == Reason.REPLAY
    assert not opener.in_flight(info.value, frame)
    garbage = FrameRejected(Reason.STALE, "made up")
    assert not opener.in_flight(garbage, b"\x00" * 8)  # not a frame: nothing to tell
