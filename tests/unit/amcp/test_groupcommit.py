"""Group commit (amcp.groupcommit), on an event loop with no I/O: a lone item is sent at
once, inside `submit`; what is submitted while it is in flight (the same loop turn) goes
as one group at the next turn; groups hold at most `max_items`; a subject idle for a turn
sends at once again; a failed group is reported with its items, never raised."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amcp import tracing
from amcp.groupcommit import GroupCommit


class Wire:
    """A send function that records each call (a frame) with the turn it was made in."""

    def __init__(self, fail: bool = False) -> None:
        self.frames: list[tuple[str, list[int]]] = []
        self.fail = fail

    async def _sent(self) -> None:
        if self.fail:
            raise ConnectionError("link down")

    def send(self, subject: str, items: Sequence[int]) -> Coroutine[None, None, None]:
        # a coroutine that does not suspend, as a publish handed to nats-py's buffer
        self.frames.append((subject, list(items)))
        return self._sent()


async def turns(n: int = 3) -> None:
    """Let the loop come round `n` times (each group takes one)."""
    for _ in range(n):
        await asyncio.sleep(0)


async def test_a_lone_item_is_sent_inside_submit() -> None:
    wire = Wire()
    commits = GroupCommit(wire.send)
    sent = commits.submit("s", 1)
    assert sent is not None and wire.frames == [("s", [1])]  # before any await
    await sent
    await turns()
    assert not commits.in_flight("s")
    again = commits.submit("s", 2)  # idle again: at once
    assert again is not None and wire.frames[-1] == ("s", [2])
    await again


async def test_what_comes_while_in_flight_shares_the_next_frame_per_subject() -> None:
    wire = Wire()
    commits = GroupCommit(wire.send)
    first = commits.submit("a", 0)
    queued = [commits.submit("a", i) for i in range(1, 6)]
    other = commits.submit("b", 9)  # another subject is not held back
    assert queued == [None] * 5 and first is not None and other is not None
    assert wire.frames == [("a", [0]), ("b", [9])]
    await first
    await other
    await turns()
    assert wire.frames == [("a", [0]), ("b", [9]), ("a", [1, 2, 3, 4, 5])]
    assert (commits.frames, commits.items) == (3, 7)


@settings(max_examples=50, deadline=None)
@given(bursts=st.lists(st.integers(1, 40), min_size=1, max_size=5), limit=st.integers(1, 8))
def test_every_item_goes_once_in_order_in_groups_of_at_most_max_items(
    bursts: list[int], limit: int
) -> None:
    async def run() -> list[tuple[str, list[int]]]:
        wire = Wire()
        commits = GroupCommit(wire.send, max_items=limit)
        n = 0
        for size in bursts:  # a burst: all submitted in one loop turn
            for _ in range(size):
                sent = commits.submit("s", n)
                n += 1
                if sent is not None:
                    await sent
            await turns(len(bursts) * 50)
        return wire.frames

    frames = asyncio.run(run())
    assert [i for _, items in frames for i in items] == list(range(sum(bursts)))
    assert all(1 <= len(items) <= limit for _, items in frames)
    # each burst's first item alone, its others in ceil((size - 1) / limit) groups
    assert len(frames) == sum(1 + -(-(size - 1) // limit) for size in bursts)


async def test_a_failed_group_is_reported_with_its_items_not_raised() -> None:
    wire = Wire(fail=True)
    failed: list[tuple[str, list[int], str]] = []
    commits = GroupCommit(
        wire.send, on_error=lambda s, items, exc: failed.append((s, list(items), str(exc)))
    )
    first = commits.submit("s", 1)
    assert commits.submit("s", 2) is None
    assert commits.submit("s", 3) is None
    with pytest.raises(ConnectionError):  # the lone send's error is its submitter's
        await first  # type: ignore[misc]
    await turns()
    assert failed == [("s", [2, 3], "link down")] and commits.errors == 1


def test_max_items_must_be_positive() -> None:
    async def make() -> None:
        GroupCommit(Wire().send, max_items=0)

    with pytest.raises(ValueError, match="max_items"):
        asyncio.run(make())


async def test_each_queued_item_keeps_the_span_it_was_submitted_in() -> None:
    # the group is sent from a loop callback: the sender learns each item's span from
    # tracing.group_spans, in step with the items (max_items splits both alike)
    seen: list[tuple[list[int], object, object]] = []

    def send(subject: str, items: Sequence[int]) -> Coroutine[None, None, None]:
        seen.append((list(items), tracing.group_spans.get(), tracing.current_span.get()))
        return Wire().send(subject, items)

    commits = GroupCommit(send, max_items=2)
    contexts = [tracing.new_trace(), None, tracing.new_trace(), tracing.new_trace()]
    sent = []
    for i, ctx in enumerate(contexts):
        with tracing.use_span(ctx):
            sent.append(commits.submit("s", i))
    await sent[0]
    await turns()
    assert seen[0] == ([0], None, contexts[0])  # the lone one: in its submitter's span
    assert [(items, spans) for items, spans, _ in seen[1:]] == [
        ([1, 2], (None, contexts[2])),
        ([3], (contexts[3],)),
    ]
    assert tracing.group_spans.get() is None  # set only while a group is handed over
