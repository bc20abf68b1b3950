"""Heartbeats of ids that are not members cost a bounded, small amount of state and are
dropped from the member view; a genuine member whose heartbeat came before its member
record is alive from that heartbeat once the record arrives (issue 14, point 6)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from agents.runtime.discovery import MAX_PENDING, Discovery
from agents.runtime.liveness import Liveness, LivenessDetector
from agents.runtime.membership import MemberRecord


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def record(agent_id: str) -> MemberRecord:
    return MemberRecord(id=agent_id, role="s1", version="0", state="running", heartbeat=1.0)


def beat(agent_id: str, **extra: object) -> dict[str, object]:
    return {"id": agent_id, "state": "running", "interval": 1.0, **extra}


def test_forged_ids_are_dropped_and_bounded_while_members_stay_alive() -> None:
    clock = Clock()
    d = Discovery(LivenessDetector(1.0), clock)
    records = {"a": record("a"), "b": record("b")}
    d.sync(records)
    fakes = [f"fake-{i}" for i in range(5 * MAX_PENDING)]
    for i, fake in enumerate(fakes):
        d.heartbeat(fake, beat(fake, pad="x" * 1024))
        if i % 100 == 0:
            clock.now += 0.5
            d.heartbeat("a", beat("a"))
            d.heartbeat("b", beat("b"))
    assert not any(fake in d.detector for fake in fakes)
    assert sorted(d.detector) == ["a", "b"]
    assert d.pending <= MAX_PENDING and d.ignored == len(fakes)
    assert [m.liveness for m in d.view(records)] == [Liveness.ALIVE, Liveness.ALIVE]


def test_a_member_whose_heartbeat_came_before_its_record_is_alive_from_that_beat() -> None:
    clock = Clock()
    d = Discovery(LivenessDetector(1.0), clock)
    d.sync({"a": record("a")})
    d.heartbeat("late", beat("late"))  # its record has not replicated here yet
    assert "late" not in d.detector and d.pending == 1
    clock.now += 0.3
    records = {"a": record("a"), "late": record("late")}
    d.sync(records)
    assert d.detector.last_heartbeat("late") == 1000.0 and d.pending == 0
    assert {m.record.id: m.liveness for m in d.view(records)}["late"] is Liveness.ALIVE
    clock.now += 0.7
    d.heartbeat("late", beat("late", ts=7))
    status = {m.record.id: m for m in d.view(records)}["late"]
    assert status.liveness is Liveness.ALIVE and status.last_heartbeat_ms == 7


def test_members_that_leave_are_forgotten_even_if_they_never_beat() -> None:
    d = Discovery(LivenessDetector(1.0), Clock())
    d.sync({"a": record("a"), "b": record("b")})
    d.heartbeat("a", beat("a"))
    d.sync({})
    assert list(d.detector) == [] and len(d.detector) == 0


events = st.lists(
    st.one_of(
        st.tuples(st.just("beat"), st.sampled_from(["a", "b", "c", "x", "y"]), st.integers(0, 99)),
        st.tuples(st.just("sync"), st.sets(st.sampled_from(["a", "b", "c", "x"])), st.just(0)),
        st.tuples(st.just("tick"), st.just(""), st.integers(1, 30)),
    ),
    max_size=60,
)


@given(events)
def test_tracked_state_is_bounded_by_the_members_and_the_pending_limit(events: list) -> None:
    clock = Clock()
    d = Discovery(LivenessDetector(1.0), clock)
    members: set[str] = set()
    for kind, who, n in events:
        if kind == "beat":
            name = f"{who}{n}" if who in "xy" else who  # x, y: many forged ids
            d.heartbeat(name, beat(name))
        elif kind == "sync":
            members = set(who)
            d.sync({m: record(m) for m in members})
        else:
            clock.now += n / 10
        assert set(d.detector) <= members
        assert d.pending <= MAX_PENDING
