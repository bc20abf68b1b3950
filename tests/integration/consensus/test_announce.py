"""How a decision is announced (the decision log's delta) on a real nats-server: one that
no member waits on may linger to share a frame with the next decisions; one whose leases
voters hold, or that an executor must run, goes at once whatever the coordinator's linger."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from amcp import Message
from consensus import ConsensusError, Coordinator, DecisionLog, ExecState, Outcome
from consensus.record import decision_key
from crdt.messages import Deltas, parse
from tests.support.consensus import Members, counting_tool
from tests.support.waiting import wait_until

THREE = ("v1", "v2", "v3")
LONG = 50.0  # a linger no test waits out: a frame seen sooner was sent at once


async def announced(members: Members, coordinator: Coordinator) -> list[set[str]]:
    """The keys of each delta frame the coordinator's replica sends, as a spy sees them."""
    frames: list[set[str]] = []
    spy = await members.bus("spy")
    proposer = coordinator.bus.sender

    def on_delta(msg: Message) -> None:
        m = parse(msg.body)
        if msg.sender == proposer and isinstance(m, Deltas):
            frames.append({record[0] for record in m.records})

    await spy.subscribe(spy.subjects.area("ctx", "delta"), on_delta)
    await spy.flush()
    return frames


def sent(frames: list[set[str]], proposal_id: str) -> Callable[[], bool]:
    return lambda: any(decision_key(proposal_id) in keys for keys in frames)


async def test_decisions_nobody_waits_on_share_announcement_frames(members: Members) -> None:
    for v in THREE:
        await members.add(v)
    coordinator = await members.coordinator(linger=0.3)
    frames = await announced(members, coordinator)
    ids = []
    for i in range(4):
        result = await coordinator.coordinate("restart", {"targets": [f"w{i}"]}, timeout=5)
        assert result.outcome is Outcome.COMMITTED
        ids.append(result.proposal.id)
    await wait_until(lambda: all(sent(frames, p)() for p in ids), 5, what="every announcement")
    assert len(frames) < len(ids), frames
    logs = [DecisionLog(members.agents[v].store) for v in THREE]  # type: ignore[arg-type]
    await wait_until(
        lambda: all(log.decided(p) is not None for log in logs for p in ids), 5, what="replicas"
    )


async def test_decisions_on_a_resource_are_announced_at_once(members: Members) -> None:
    for v in THREE:
        await members.add(v)
    coordinator = await members.coordinator(linger=LONG)
    frames = await announced(members, coordinator)
    # the voters' leases on "db" end when they hear of each decision: a lingering one
    # would find them busy with the last
    for i in range(10):
        result = await coordinator.coordinate("restart", {"i": i}, resource="db", timeout=5)
        assert result.outcome is Outcome.COMMITTED, (i, [v.reason for v in result.decision.votes])
        await wait_until(sent(frames, result.proposal.id), 5, what=f"decision {i} announced")


async def test_a_decision_with_an_executor_is_announced_at_once(members: Members) -> None:
    runs: list[str] = []
    for v in THREE:
        await members.add(v)
    await members.add(
        "x1", role="s1", voter=False, tools=(counting_tool(runs),), executes={"restart": "apply"}
    )
    coordinator = await members.coordinator(linger=LONG)
    frames = await announced(members, coordinator)
    result = await coordinator.coordinate("restart", {"seconds": 0}, timeout=10)
    assert result.outcome is Outcome.COMMITTED
    assert result.execution is not None and result.execution.state is ExecState.DONE
    assert len(runs) == 1
    await wait_until(sent(frames, result.proposal.id), 5, what="the decision announced")


async def test_a_bad_linger_is_refused(members: Members) -> None:
    bus = await members.bus("p")
    for linger in (-0.1, float("nan"), float("inf"), 61.0, "0.01"):
        with pytest.raises(ConsensusError, match="linger"):
            await Coordinator.open(bus, linger=linger)


async def test_a_closing_coordinator_announces_what_lingers(members: Members) -> None:
    # as `amcp coordinate` does: decide, close, exit; nobody else holds the record
    for v in THREE:
        await members.add(v)
    coordinator = await members.coordinator(linger=LONG)
    result = await coordinator.coordinate("restart", {"targets": ["w1"]}, timeout=5)
    assert result.outcome is Outcome.COMMITTED
    await coordinator.close()
    logs = [DecisionLog(members.agents[v].store) for v in THREE]  # type: ignore[arg-type]
    await wait_until(
        lambda: all(log.decided(result.proposal.id) is not None for log in logs),
        5,
        what="the decision at every voter after the close",
    )
