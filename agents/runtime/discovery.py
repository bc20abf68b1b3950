"""Discovery: the member list joined with what heartbeats say about each member (pure).

Members come from the replicated list; liveness, the last heartbeat and each member's own
figures (state, load, calls, bus rejections) come from its heartbeats, as this observer
received them. Nothing here does I/O: the runtime feeds heartbeats and asks for the view.

Only members are tracked. A correctly signed heartbeat from an id that is not in the list
(forged ids, or a joiner whose record has not replicated here yet) keeps no body and no
detector entry: only when it was received, in a table of at most MAX_PENDING ids (the
oldest go first). When the id's record arrives, the member is tracked from that heartbeat,
so a genuine joiner is alive at once; a flood of made-up ids costs a fixed amount.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agents.runtime.liveness import Liveness, LivenessDetector
from agents.runtime.membership import MemberRecord

__all__ = ["MAX_PENDING", "Discovery", "MemberStatus"]

MAX_PENDING = 64
"""Non-member ids whose last heartbeat is kept (a few joiners at once; never a flood)."""


@dataclass(frozen=True, slots=True)
class MemberStatus:
    """One member as this observer sees it."""

    record: MemberRecord
    liveness: Liveness
    phi: float
    state: str  # the latest of the record's and the last heartbeat's lifecycle state
    last_heartbeat_ms: int | None  # the member's clock when it sent its last heartbeat
    heartbeat_age: float | None  # seconds since this observer received it
    stats: dict[str, Any] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        return {
            **self.record.to_wire(),
            "state": self.state,
            "liveness": self.liveness.value,
            "phi": round(self.phi, 3) if self.phi < 1e9 else 1e9,
            "last_heartbeat_ms": self.last_heartbeat_ms,
            "heartbeat_age": None if self.heartbeat_age is None else round(self.heartbeat_age, 3),
            "stats": self.stats,
        }


class Discovery:
    """Feeds heartbeats to a liveness detector and answers with the member view."""

    def __init__(
        self, detector: LivenessDetector, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.detector = detector
        self.clock = clock
        self.ignored = 0  # heartbeats of ids that were not members when they came
        self._members: frozenset[str] = frozenset()  # as of the last sync
        self._beats: dict[str, tuple[float, dict[str, Any]]] = {}  # id -> (received, body)
        self._pending: dict[str, tuple[float, float | None]] = {}  # id -> (received, interval)

    @property
    def pending(self) -> int:
        """How many non-member ids have a heartbeat kept for when their record comes."""
        return len(self._pending)

    def heartbeat(self, agent_id: str, body: Mapping[str, Any]) -> None:
        """Record a verified heartbeat of `agent_id` (a non-member's is only noted)."""
        stopped = body.get("state") == "stopped"  # its last word: it has left
        if agent_id not in self._members:
            self.ignored += 1
            self._pending.pop(agent_id, None)  # re-inserted last: the oldest go first
            if not stopped:
                if len(self._pending) >= MAX_PENDING:
                    del self._pending[next(iter(self._pending))]
                self._pending[agent_id] = (self.clock(), _interval(body))
            return
        if stopped:
            self._beats.pop(agent_id, None)
            self.detector.forget(agent_id)
            return
        now = self.clock()
        self.detector.heartbeat(agent_id, now, _interval(body))
        self._beats[agent_id] = (now, dict(body))

    def sync(self, records: Mapping[str, MemberRecord]) -> None:
        """Track new members from now (or from a heartbeat that came before their record);
        forget the ones that left or were removed."""
        now = self.clock()
        self._members = frozenset(records)
        for agent_id, record in records.items():
            early = self._pending.pop(agent_id, None)
            if early is not None and agent_id not in self.detector:
                self.detector.track(agent_id, early[0], early[1] or record.heartbeat)
            else:
                self.detector.track(agent_id, now, record.heartbeat)
        for agent_id in [m for m in self.detector if m not in records]:
            self._beats.pop(agent_id, None)
            self.detector.forget(agent_id)

    def status(self, record: MemberRecord) -> MemberStatus:
        now = self.clock()
        agent_id = record.id
        self.detector.track(agent_id, now, record.heartbeat)
        beat = self._beats.get(agent_id)
        state, sent_ms, age, stats = record.state, None, None, {}
        if beat is not None:
            received, body = beat
            state = str(body.get("state", state))
            sent_ms = body.get("ts") if isinstance(body.get("ts"), int) else None
            age = now - received
            stats = {k: v for k, v in body.items() if k not in ("id", "role", "state", "ts")}
        return MemberStatus(
            record,
            self.detector.state(agent_id, now),
            self.detector.phi(agent_id, now),
            state,
            sent_ms,
            age,
            stats,
        )

    def view(self, records: Mapping[str, MemberRecord]) -> list[MemberStatus]:
        """Every member, sorted by role then id."""
        return [
            self.status(records[k]) for k in sorted(records, key=lambda k: (records[k].role, k))
        ]

    def liveness_counts(self, records: Mapping[str, MemberRecord]) -> dict[str, int]:
        counts = {state.value: 0 for state in Liveness}
        for member in self.view(records):
            counts[member.liveness.value] += 1
        return counts


def _interval(body: Mapping[str, Any]) -> float | None:
    """The heartbeat period a body advertises, if it is a sane one."""
    interval = body.get("interval")
    ok = isinstance(interval, int | float) and not isinstance(interval, bool)
    return float(interval) if ok and 0 < interval < 3600 else None
