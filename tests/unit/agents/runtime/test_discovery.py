"""Discovery joins the replicated member list with heartbeats, on an explicit clock."""

from __future__ import annotations

from agents.runtime.discovery import Discovery
from agents.runtime.liveness import Liveness, LivenessDetector
from agents.runtime.membership import MemberRecord


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def record(agent_id: str, role: str = "s1", state: str = "running") -> MemberRecord:
    return MemberRecord(id=agent_id, role=role, version="0", state=state, heartbeat=1.0)


def test_view_merges_records_and_heartbeats() -> None:
    clock = Clock()
    d = Discovery(LivenessDetector(1.0), clock)
    records = {"b": record("b", "s2"), "a": record("a", "s1", "starting")}
    d.sync(records)
    d.heartbeat(
        "a", {"id": "a", "state": "running", "ts": 5, "interval": 1.0, "load": {"running": 1}}
    )
    clock.now += 0.5
    view = {m.record.id: m for m in d.view(records)}
    assert [m.record.id for m in d.view(records)] == ["a", "b"]  # by role, then id
    assert view["a"].state == "running"  # the heartbeat is newer than the record
    assert view["a"].stats == {"interval": 1.0, "load": {"running": 1}}
    assert view["a"].heartbeat_age == 0.5 and view["a"].last_heartbeat_ms == 5
    assert view["b"].state == "running" and view["b"].heartbeat_age is None
    assert {m.liveness for m in view.values()} == {Liveness.ALIVE}


def test_a_silent_member_dies_but_stays_in_the_view() -> None:
    clock = Clock()
    d = Discovery(LivenessDetector(1.0), clock)
    records = {"a": record("a"), "b": record("b")}
    d.sync(records)
    for _ in range(10):
        d.heartbeat("a", {"id": "a", "interval": 1.0})
        d.heartbeat("b", {"id": "b", "interval": 1.0})
        clock.now += 1.0
    for _ in range(10):
        d.heartbeat("a", {"id": "a", "interval": 1.0})
        clock.now += 1.0
    view = {m.record.id: m.liveness for m in d.view(records)}
    assert view == {"a": Liveness.ALIVE, "b": Liveness.DEAD}
    assert d.liveness_counts(records) == {"alive": 1, "suspect": 0, "dead": 1}


def test_leaving_members_are_forgotten() -> None:
    clock = Clock()
    d = Discovery(LivenessDetector(1.0), clock)
    records = {"a": record("a")}
    d.sync(records)
    d.heartbeat("a", {"id": "a", "state": "running"})
    d.heartbeat("a", {"id": "a", "state": "stopped"})  # its last word
    assert "a" not in d.detector
    d.heartbeat("a", {"id": "a", "state": "running"})
    d.sync({})  # removed from the member list
    assert "a" not in d.detector and d.view({}) == []


def test_a_bad_advertised_interval_is_ignored() -> None:
    clock = Clock()
    detector = LivenessDetector(1.0)
    d = Discovery(detector, clock)
    d.heartbeat("a", {"id": "a", "interval": "soon"})
    d.heartbeat("a", {"id": "a", "interval": -5})
    clock.now += 2.0
    assert detector.state("a", clock.now) is Liveness.ALIVE
