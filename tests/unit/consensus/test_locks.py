"""The per-resource lock table, and the safety it gives: one committing proposal per resource."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from consensus.errors import ConsensusError
from consensus.locks import Lease, LockTable


def test_acquire_busy_returns_the_holder() -> None:
    locks = LockTable()
    assert locks.acquire("svc", "p1", now_ms=0, expires_ms=100) is None
    assert locks.acquire("svc", "p2", now_ms=10, expires_ms=200) == Lease("svc", "p1", 100)
    assert locks.acquire("db", "p2", now_ms=10, expires_ms=200) is None
    assert locks.holder("svc", now_ms=10) == Lease("svc", "p1", 100)


def test_reacquire_by_the_holder_keeps_the_later_expiry() -> None:
    locks = LockTable()
    locks.acquire("svc", "p1", now_ms=0, expires_ms=100)
    assert locks.acquire("svc", "p1", now_ms=50, expires_ms=300) is None
    assert locks.holder("svc", now_ms=250) == Lease("svc", "p1", 300)
    assert locks.acquire("svc", "p1", now_ms=60, expires_ms=200) is None
    assert locks.holder("svc", now_ms=250) == Lease("svc", "p1", 300)


def test_lease_expires_at_its_time() -> None:
    locks = LockTable()
    locks.acquire("svc", "p1", now_ms=0, expires_ms=100)
    assert locks.holder("svc", now_ms=99) is not None
    assert locks.holder("svc", now_ms=100) is None
    assert locks.acquire("svc", "p2", now_ms=100, expires_ms=200) is None
    assert locks.holder("svc", now_ms=150) == Lease("svc", "p2", 200)


def test_release_only_by_the_holder() -> None:
    locks = LockTable()
    locks.acquire("svc", "p1", now_ms=0, expires_ms=100)
    assert not locks.release("svc", "p2")
    assert not locks.release("db", "p1")
    assert locks.release("svc", "p1")
    assert not locks.release("svc", "p1")
    assert locks.holder("svc", now_ms=0) is None


def test_a_stale_holder_cannot_free_its_successor() -> None:
    locks = LockTable()
    locks.acquire("svc", "p1", now_ms=0, expires_ms=100)
    locks.acquire("svc", "p2", now_ms=150, expires_ms=300)  # p1 expired, p2 took over
    assert not locks.release("svc", "p1")
    assert locks.holder("svc", now_ms=200) == Lease("svc", "p2", 300)


def test_expire_sweeps_and_reports_sorted() -> None:
    locks = LockTable()
    locks.acquire("b", "p1", now_ms=0, expires_ms=10)
    locks.acquire("a", "p2", now_ms=0, expires_ms=20)
    locks.acquire("c", "p3", now_ms=0, expires_ms=100)
    assert locks.expire(now_ms=20) == [Lease("a", "p2", 20), Lease("b", "p1", 10)]
    assert len(locks) == 1
    assert locks.expire(now_ms=20) == []


@pytest.mark.parametrize("expires_ms", [0, -5])
def test_a_lease_must_end_after_it_starts(expires_ms: int) -> None:
    with pytest.raises(ConsensusError):
        LockTable().acquire("svc", "p1", now_ms=0, expires_ms=expires_ms)


PROPOSALS = [f"p{i}" for i in range(4)]
RESOURCES = ["svc", "db"]


class ProposerCluster(RuleBasedStateMachine):
    """Proposers race for resources; a proposal commits and executes only under its lease.

    Each commit is recorded as the interval during which the proposal may act: from the
    commit until its lease ends (release or expiry). No two proposals may have overlapping
    intervals on one resource.
    """

    @initialize()
    def start(self) -> None:
        self.locks = LockTable()
        self.now = 0
        self.resource_of = {p: RESOURCES[i % len(RESOURCES)] for i, p in enumerate(PROPOSALS)}
        self.acting: dict[str, int] = {}  # proposal -> commit time, while it may act
        self.intervals: list[tuple[str, str, int, int]] = []  # resource, proposal, start, end

    @rule(p=st.sampled_from(PROPOSALS), ttl=st.integers(1, 20), commit=st.booleans())
    def propose(self, p: str, ttl: int, commit: bool) -> None:
        resource = self.resource_of[p]
        holder = self.locks.acquire(resource, p, now_ms=self.now, expires_ms=self.now + ttl)
        if holder is not None:
            assert holder.proposal_id != p
            assert holder.live(self.now)
        elif commit:
            self.commit(p)

    @rule(p=st.sampled_from(PROPOSALS))
    def commit(self, p: str) -> None:
        lease = self.locks.holder(self.resource_of[p], now_ms=self.now)
        if lease is not None and lease.proposal_id == p and p not in self.acting:
            self.acting[p] = self.now

    @rule(p=st.sampled_from(PROPOSALS))
    def finish(self, p: str) -> None:
        released = self.locks.release(self.resource_of[p], p)
        if p in self.acting:
            self._close(p, self.now)
        assert not released or self.locks.holder(self.resource_of[p], now_ms=self.now) is None

    @rule(dt=st.integers(1, 20))
    def tick(self, dt: int) -> None:
        self.now += dt
        for p in list(self.acting):
            lease = self.locks.holder(self.resource_of[p], now_ms=self.now)
            if lease is None or lease.proposal_id != p:
                self._close(p, self.now)

    @rule()
    def sweep(self) -> None:
        for lease in self.locks.expire(now_ms=self.now):
            assert not lease.live(self.now)

    def _close(self, p: str, end: int) -> None:
        self.intervals.append((self.resource_of[p], p, self.acting.pop(p), end))

    @invariant()
    def one_committing_proposal_per_resource(self) -> None:
        if not hasattr(self, "locks"):
            return
        open_now = [(self.resource_of[p], p, t, self.now + 1) for p, t in self.acting.items()]
        spans = self.intervals + open_now
        for i, (r1, p1, s1, e1) in enumerate(spans):
            for r2, p2, s2, e2 in spans[i + 1 :]:
                if r1 == r2 and p1 != p2:
                    assert e1 <= s2 or e2 <= s1, f"{p1} and {p2} both committing on {r1}"

    @invariant()
    def at_most_one_live_lease_per_resource(self) -> None:
        if not hasattr(self, "locks"):
            return
        for resource in RESOURCES:
            lease = self.locks.holder(resource, now_ms=self.now)
            assert lease is None or (lease.resource == resource and lease.live(self.now))


TestProposerCluster = ProposerCluster.TestCase
TestProposerCluster.settings = settings(max_examples=200, stateful_step_count=40)
