"""Retention of the decision log on a real nats-server: a repeated proposal id replays its
first decision within the horizon and is dropped by every replica after it; a member cut
off learns the decisions it missed within the horizon and brings back none that expired
while it was away; a replica at its count limit refuses what an unlimited peer still
holds, and the two converge once both keep the same limit. And the one JetStream stream
amcp creates, the audit log, is bounded in count and bytes."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from agents.runtime.audit import STREAM_MAX_BYTES, STREAM_MAX_MSGS, AuditLog
from agents.runtime.subjects import AgentSubjects
from consensus import (
    Choice,
    Decided,
    DecisionLog,
    DecisionRetention,
    Outcome,
    Proposal,
    Scores,
    Vote,
    decide,
)
from consensus.record import decision_key
from crdt import ContextStore, LWWRegister
from tests.support.consensus import Members
from tests.support.waiting import wait_until

GOSSIP = 0.2


def decided(proposal_id: str) -> Decided:
    """A committed decision of one voter, made now."""
    now = time.time_ns() // 1_000_000
    proposal = Proposal(
        id=proposal_id,
        action="restart",
        proposer="p",
        created_ms=now,
        deadline_ms=now + 5000,
        payload={"n": proposal_id},
        quorum="majority",
    )
    vote = Vote(
        proposal_id=proposal_id,
        proposal_digest=proposal.digest,
        deadline_ms=proposal.deadline_ms,
        voter="v1",
        choice=Choice.YES,
        scores=Scores(urgency=1, importance=1, risk=0, confidence=1, novelty=1),
        combined=1.0,
        reason="yes",
    )
    decision = decide(proposal, ["v1"], [vote], now_ms=now)
    assert decision is not None and decision.outcome is Outcome.COMMITTED
    return Decided(proposal=proposal, decision=decision, executor=None, decided_ms=now)


def held(store: ContextStore, *ids: str) -> list[str]:
    """The ids whose decision key this replica holds (expired or not)."""
    return [i for i in ids if decision_key(i) in store._state]


def expiry(store: ContextStore, proposal_id: str) -> tuple[int, str]:
    """What the count limit orders by: (expiry, key) of the decision's register."""
    key = decision_key(proposal_id)
    register = LWWRegister.from_wire(store._state.full_delta(key).wire)
    assert register.expires_ms is not None
    return register.expires_ms, key


def in_sync(*stores: ContextStore) -> bool:
    return len({s._rep.index.top() for s in stores}) == 1


async def test_a_repeated_id_replays_within_the_horizon_and_is_dropped_everywhere_after(
    members: Members, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AMCP_DECISION_HORIZON", "5")
    for v in ("v1", "v2", "v3"):
        await members.add(v)
    first, other = await members.coordinator("p1"), await members.coordinator("p2")
    result = await first.coordinate("restart", {"targets": ["w1"]}, proposal_id="job-1")
    assert result.outcome is Outcome.COMMITTED and not result.replayed
    # The decision reaches the other member's replica by replication: replay there once it has
    await wait_until(lambda: held(other.store, "job-1"), 3, what="job-1 replicated to p2")
    for coordinator in (first, other):
        again = await coordinator.coordinate("restart", {"targets": ["w1"]}, proposal_id="job-1")
        assert again.replayed and again.decision == result.decision
    stores = [a.store for a in members.agents.values()] + [first.store, other.store]
    assert all(held(s, "job-1") for s in stores)
    await wait_until(
        lambda: not any(held(s, "job-1") for s in stores), 15, what="job-1 dropped everywhere"
    )
    assert all(s.stats.get("dropped", 0) >= 1 for s in stores)


async def test_a_member_cut_off_learns_what_it_missed_and_revives_nothing_expired(
    make_bus: Any, tmp_path: Path
) -> None:
    cluster = f"c{uuid.uuid4().hex[:8]}"
    retention = DecisionRetention(horizon_s=2.0)
    options = {"gossip_interval": GOSSIP, "bootstrap_timeout": 1.0}
    a = await ContextStore.open(
        await make_bus("ra", cluster=cluster), data_dir=tmp_path / "a", **options
    )
    b = await ContextStore.open(
        await make_bus("rb", cluster=cluster), data_dir=tmp_path / "b", **options
    )
    try:
        log_a = DecisionLog(a, retention)
        await wait_until(lambda: len(a.members()) == 2, 5, what="two members")
        await log_a.record(decided("old"), write="all", timeout=5)
        assert held(b, "old")
        await b.close()  # cut off, with "old" on its disk
        await wait_until(lambda: not held(a, "old"), 10, what="old expired on a")
        await log_a.record(decided("new"), write="local", timeout=5)
        b = await ContextStore.open(
            await make_bus("rb2", cluster=cluster), data_dir=tmp_path / "b", **options
        )
        log_b = DecisionLog(b, retention)
        await wait_until(lambda: log_b.decided("new") is not None, 5, what="b learns new")
        assert log_b.decided("new") == log_a.decided("new")
        await wait_until(lambda: in_sync(a, b), 10, what="a and b in sync")
        assert held(a, "old", "new") == held(b, "old", "new") == ["new"]
    finally:
        await b.close()
        await a.close()


async def test_a_limited_replica_refuses_what_an_unlimited_peer_still_holds(
    make_bus: Any,
) -> None:
    cluster = f"c{uuid.uuid4().hex[:8]}"
    options = {"gossip_interval": GOSSIP, "bootstrap_timeout": 0.5}
    a = await ContextStore.open(await make_bus("ra", cluster=cluster), **options)
    b = await ContextStore.open(await make_bus("rb", cluster=cluster), **options)
    try:
        retention = DecisionRetention(horizon_s=60.0, max_records=3)
        log_a = DecisionLog(a, retention)
        ids = [f"d{n}" for n in range(6)]
        for proposal_id in ids:
            await log_a.record(decided(proposal_id), write="local", timeout=5)
        await wait_until(lambda: held(b, *ids) == ids, 5, what="b holds all six")
        kept = sorted(ids, key=lambda i: expiry(b, i))[3:]  # the three that expire last
        assert held(a, *ids) == sorted(kept)
        # anti-entropy offers a the three it dropped, again and again: it refuses them
        await wait_until(lambda: a.stats.get("expired", 0) >= 6, 10, what="a refuses them")
        assert held(a, *ids) == sorted(kept)
        DecisionLog(b, retention)  # b keeps the same limit: they converge
        assert held(b, *ids) == sorted(kept)
        await wait_until(lambda: in_sync(a, b), 10, what="a and b in sync")
    finally:
        await b.close()
        await a.close()


async def test_the_audit_stream_is_bounded_by_count_and_bytes(make_bus: Any) -> None:
    """The one JetStream stream amcp creates (the cluster's audit log) has limits."""
    bus = await make_bus("a1", cluster=f"c{uuid.uuid4().hex[:8]}")
    audit = AuditLog(bus, "a1", "s1")
    await audit.open()
    try:
        info = await bus.nc.jetstream().stream_info(AgentSubjects(bus.subjects).audit_stream)
        assert info.config.max_msgs == STREAM_MAX_MSGS
        assert info.config.max_bytes == STREAM_MAX_BYTES
    finally:
        await audit.close()
