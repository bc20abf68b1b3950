"""The server's permission refusals: parsing its -ERR, and the futures watching a subject."""

from __future__ import annotations

import asyncio

from amcp.denials import DenialWatches, refusal


def test_refusal_reads_the_operation_and_subject_of_a_permissions_violation() -> None:
    err = Exception("nats: 'Permissions Violation for Publish to \"tasks.s1\"'")
    assert refusal(err) == ("publish", "tasks.s1")
    sub = Exception('permissions violation for subscription to "amcp.prod.>"')
    assert refusal(sub) == ("subscribe", "amcp.prod.>")
    assert refusal(Exception("stale connection")) is None


async def test_a_watch_lasts_while_its_block_is_open() -> None:
    watches = DenialWatches()
    fut = asyncio.get_running_loop().create_future()
    with watches.watch("a.b", fut):
        assert watches.on("a.b") == [fut] and watches.on("a.c") == []
    assert watches.on("a.b") == []
