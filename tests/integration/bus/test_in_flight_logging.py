"""A frame stamped just before a receiver started is refused and counted as stale, but
logged at DEBUG (it was most likely in flight as the receiver subscribed: a CLI command
starting among talking agents sees one); an older one is a warning, and the quiet one does
not fold that warning away (CI found `amcp coordinate` printing the first kind)."""

from __future__ import annotations

import logging
import time

import pytest

from amcp import Reason, Sealer
from tests.support import factories
from tests.support.waiting import wait_until

SUBJECT = "inflight.t"


async def test_a_frame_from_just_before_the_start_is_quiet_an_older_one_warns(
    make_bus, caplog: pytest.LogCaptureFixture
) -> None:
    keyring = factories.ring(time.time())  # its key signed already 100 s ago
    sender = await make_bus("sender", ring=keyring)
    receiver = await make_bus("receiver", ring=keyring)
    started = time.time()
    got: list[object] = []
    await receiver.subscribe(SUBJECT, got.append)
    await receiver.flush()
    in_flight = Sealer("agent-a", keyring, clock=lambda: started - 1.0)
    replayed = Sealer("agent-b", keyring, clock=lambda: started - 12.0)
    caplog.set_level(logging.DEBUG, logger="amcp.bus")

    await sender.publish_frame(SUBJECT, in_flight.seal(SUBJECT, {"n": 1}))
    await sender.publish_frame(SUBJECT, replayed.seal(SUBJECT, {"n": 2}))
    await sender.publish(SUBJECT, {"n": 3})  # a fresh one still gets through
    await sender.flush()
    await wait_until(lambda: len(got) == 1, 10, what="the fresh message")

    assert receiver.stats.counts[Reason.STALE] == 2
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "amcp.bus"]
    quiet = [m for level, m in lines if level == logging.DEBUG and "agent-a" in m]
    loud = [m for level, m in lines if level == logging.WARNING and "agent-b" in m]
    assert len(quiet) == 1 and "in flight then, or replayed" in quiet[0], lines
    assert len(loud) == 1 and "in flight" not in loud[0], lines
    assert not [m for level, m in lines if level >= logging.WARNING and "agent-a" in m], lines
