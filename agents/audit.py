"""The audit log: what every agent did, append-only, in two places.

Each entry goes to a JSONL file in the agent's data directory (when it has one) and, signed,
to the cluster-wide JetStream stream `AUDIT_<cluster>` on `amcp.<cluster>.audit.<id>`, so
`amcp log` reads the whole cluster's history in the order the stream stored it.

Entries are written by one task per agent, in the order they were recorded, so the log of
one agent never reorders; recording does not wait for the stream's acknowledgement, so a
tool call is not slowed by a round trip to JetStream. A failed stream write is logged and
counted; the entry stays in the JSONL file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from agents.wire import AgentSubjects
from amcp.bus import Bus
from amcp.errors import AmcpError, FrameRejected
from amcp.protocol import Opener, RejectionStats
from amcp.replay import ReplayGuard

__all__ = ["AuditEntry", "AuditEvent", "AuditLog", "read_cluster_log", "read_local_log"]

log = logging.getLogger("agents.audit")
AUDIT_FILE = "audit.jsonl"
STREAM_MAX_MSGS = 1_000_000
_BATCH = 256  # entries published concurrently by the writer
_TEN_YEARS_MS = 10 * 365 * 86_400_000


class AuditEvent(StrEnum):
    STARTED = "started"
    STOPPED = "stopped"
    FAILED = "failed"
    TASK_RECEIVED = "task_received"
    TASK_COMPLETED = "task_completed"
    TASK_FAILED = "task_failed"
    MEMBER_REMOVED = "member_removed"
    VOTE = "vote"
    DECISION = "decision"
    ADAPTATION = "adaptation"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the log as read back: where the stream put it and who signed it."""

    stream_seq: int
    signer: str
    record: dict[str, Any]

    @property
    def agent(self) -> str:
        return str(self.record.get("agent", ""))

    @property
    def event(self) -> str:
        return str(self.record.get("event", ""))


class AuditLog:
    """The writer of one agent's log. `record` queues; `close` flushes everything."""

    def __init__(
        self,
        bus: Bus,
        agent_id: str,
        role: str,
        data_dir: Path | None = None,
        *,
        max_pending: int = 10_000,
    ) -> None:
        self.bus = bus
        self.agent_id = agent_id
        self.role = role
        self.subjects = AgentSubjects(bus.subjects)
        self.subject = self.subjects.audit(agent_id)
        self.path = None if data_dir is None else Path(data_dir) / AUDIT_FILE
        self.recorded = 0
        self.stream_failures = 0
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(max_pending)
        self._file: Any = None
        self._writer: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Make sure the cluster stream exists and start the writer."""
        await self.bus.ensure_stream(
            self.subjects.audit_stream, [self.subjects.audit_all], max_msgs=STREAM_MAX_MSGS
        )
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = await asyncio.to_thread(open, self.path, "a", encoding="utf-8")
        self._writer = asyncio.create_task(self._write_loop(), name=f"audit-{self.agent_id}")

    async def record(self, event: str, **fields: Any) -> None:
        """Append one entry: ts (ms), agent, role, event, n (this process's count), fields."""
        self.recorded += 1
        entry = {
            "ts": int(time.time() * 1000),
            "agent": self.agent_id,
            "role": self.role,
            "event": str(event),
            "n": self.recorded,
            **fields,
        }
        await self._queue.put(entry)  # waits only when the writer is far behind

    async def close(self) -> None:
        """Write out every queued entry, fsync the file, stop the writer."""
        if self._writer is None:
            return
        await self._queue.put(None)
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer
        self._writer = None
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None

    async def _write_loop(self) -> None:
        done = False
        while not done:
            batch = [await self._queue.get()]
            while len(batch) < _BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            if batch[-1] is None:
                done = True
            entries = [e for e in batch if e is not None]
            if not entries:
                continue
            if self._file is not None:
                self._file.write("".join(json.dumps(e, default=str) + "\n" for e in entries))
                self._file.flush()
            results = await asyncio.gather(
                *(self.bus.publish_durable(self.subject, e, kind="audit") for e in entries),
                return_exceptions=True,
            )
            failed = [r for r in results if isinstance(r, BaseException)]
            if failed:
                self.stream_failures += len(failed)
                log.warning(
                    "%d audit entries of %s not stored in the stream: %s",
                    len(failed),
                    self.agent_id,
                    failed[0],
                )


def _verifier(bus: Bus, stats: RejectionStats) -> Opener:
    """An Opener for stored frames: MAC and key as always, no skew limit (a log is old by
    design); its own replay window still drops a frame stored twice."""
    guard = ReplayGuard(4096, _TEN_YEARS_MS)
    return Opener(bus.keyring, limits=bus.limits, stats=stats, guard=guard)


async def read_cluster_log(
    bus: Bus, *, count: int | None = None, agent: str | None = None, timeout: float = 2.0
) -> tuple[list[AuditEntry], dict[str, int]]:
    """The last `count` verified entries (of one agent, or all), oldest first, and the
    counts of stored frames that failed verification, by reason."""
    subjects = AgentSubjects(bus.subjects)
    subject = subjects.audit(agent) if agent else None
    frames = await bus.read_stream(
        subjects.audit_stream, subject=subject, last=count, timeout=timeout
    )
    stats = RejectionStats()
    opener = _verifier(bus, stats)
    entries: list[AuditEntry] = []
    for seq, subj, frame in frames:
        try:
            env = opener.open(subj, frame)
        except FrameRejected:
            continue
        record = env.body if isinstance(env.body, dict) else {"event": "?", "body": env.body}
        if record.get("agent") != env.sender or subj != subjects.audit(env.sender):
            stats.counts["wrong_sender"] += 1  # signed by one agent, claiming another
            continue
        entries.append(AuditEntry(seq, env.sender, record))
    return entries, {k: v for k, v in stats.as_dict().items() if v}


def read_local_log(path: Path) -> Iterable[dict[str, Any]]:
    """The entries of one agent's JSONL file, oldest first (a torn last line is skipped)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise AmcpError(f"cannot read {path}: {exc}") from None
    for line in lines:
        with contextlib.suppress(json.JSONDecodeError):
            yield json.loads(line)
