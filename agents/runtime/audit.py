"""The audit log: what every agent did, append-only, in two places.

Each entry goes to a JSONL file in the agent's data directory (when it has one) and, signed,
to the cluster-wide JetStream stream `AUDIT_<cluster>` on `amcp.<cluster>.audit.<id>`, so
`amcp log` reads the whole cluster's history in the order the stream stored it.

Entries are written by one task per agent, in the order they were recorded, so the log of
one agent never reorders. A recorder need not wait for the stream: what queues up while
earlier writes are in flight goes out as one frame holding a batch of entries, signed
once (group commit), and several frames may await their acknowledgement at once, still
stored in the order sent. An entry nobody waits for lingers up to 5 ms for company, so a
quick task's `task_received` and `task_completed` usually share one frame; a `lazy` entry
(a voter's vote, one per ballot) waits up to 50 ms, until another entry comes, so that many
share a frame instead of a JetStream write each. An outcome
is recorded with its consequence (`then`: the reply) published by the writer right
behind the entry's frame, on the same connection and in the same socket write; the stream
stores messages in the order the server receives them, so the outcome is in the log
before anything its caller does after hearing of it (cause before effect across agents)
without waiting a round trip. Acknowledgements are awaited in the background; a failed stream
write is logged and counted, and the entries stay in the JSONL file.

The frame MAC only says "a holder of the cluster key", so an agent with an identity
(`bus.identity`) also signs each frame's entries as one identity batch (record type
"audit" each): the body is {"entries": [...], "sig": ...}. `read_cluster_log` marks each
entry verified or not against the roster (`bus.verifier`; a bare list, the older body,
is unverified) and judges unverified frames by a replay window of their own, so a forged
frame in an agent's name (a far-future epoch) cannot close the window its genuine ones
are judged by.

Traced work (amcp.tracing: a span is current) leaves spans in the log: `span(name)` times a
hop and records it as a "span" entry; any other entry recorded in a trace is a point span
under the current one. Each carries trace_id, span_id, parent_id, op, start_us, duration_us
and outcome (agents.runtime.spans), and is handed to the span listeners. Untraced work
records what it always did.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from agents.runtime.spans import SPAN_EVENT, point_span, span_fields, span_of
from agents.runtime.subjects import AgentSubjects
from amcp.attest import IdentityVerdict, IdentityVerifier, sign_batch
from amcp.bus import Bus
from amcp.envelope import Envelope, Reason
from amcp.errors import AmcpError, EncodeError, FrameRejected
from amcp.identity import Identity
from amcp.protocol import Opener, RejectionStats
from amcp.replay import ReplayGuard
from amcp.tracing import Span, SpanRecord, current_span, emit_span
from amcp.tracing import span as open_span

__all__ = [
    "AuditEntry",
    "AuditEvent",
    "AuditLog",
    "read_cluster_log",
    "read_local_log",
    "signed_body",
    "verify_body",
]

log = logging.getLogger("agents.runtime.audit")
AUDIT_FILE = "audit.jsonl"
STREAM_MAX_MSGS = 1_000_000
STREAM_MAX_BYTES = 1 << 30  # and at most 1 GiB: entries vary in size, so count alone is no bound
_BATCH = 128  # entries at most in one stream frame
_IN_FLIGHT = 8  # frames sent and not yet acknowledged
_LINGER = 0.005  # how long entries nobody waits for may wait for company
_LAZY_LINGER = 0.05  # how long lazy entries alone may wait for company
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
    """One entry as read back: where the stream put it (a frame holds a batch of entries:
    `index` is the place in it) and who signed it."""

    stream_seq: int
    index: int
    signer: str
    record: dict[str, Any]
    verified: bool = False  # its frame's identity signature is `signer`'s, per the roster

    @property
    def agent(self) -> str:
        return str(self.record.get("agent", ""))

    @property
    def event(self) -> str:
        return str(self.record.get("event", ""))

    @property
    def span(self) -> SpanRecord | None:
        """The span this entry records (trace_id, span_id, parent_id, op, start, duration,
        outcome), or None: recorded outside a trace, or before entries had spans."""
        return span_of(self.record)

    @property
    def trace_id(self) -> str | None:
        value = self.record.get("trace_id")
        return value if isinstance(value, str) else None


def signed_body(identity: Identity | None, entries: list[dict[str, Any]]) -> Any:
    """The stream body of a frame of `identity`'s entries: {"entries", "sig"} with one
    batch signature over them all, or the bare list when there is no identity.
    ValueError for an entry with no canonical form (attest.signing_input)."""
    if identity is None:
        return entries
    return {"entries": entries, "sig": sign_batch(identity, [("audit", e) for e in entries])}


def verify_body(
    verifier: IdentityVerifier | None, signer: str, body: Any
) -> tuple[list[Any], IdentityVerdict | None]:
    """The entries of a stored body and whether `signer` signed them: the verdict, or
    None when there is nothing to check (no verifier, or an unsigned body: a bare list,
    as agents without an identity write)."""
    entries = body.get("entries") if isinstance(body, dict) else None
    if not isinstance(entries, list) or not entries:
        return (body if isinstance(body, list) else [body]), None
    if verifier is None:
        return entries, None
    sig = body.get("sig")
    if not isinstance(sig, bytes):
        return entries, IdentityVerdict.MALFORMED
    return entries, verifier.verify_batch(signer, [("audit", e) for e in entries], sig)


Then = Callable[[], Awaitable[Any]]
_Item = tuple[dict[str, Any] | None, Then | None]


async def _follow(then: Then) -> None:
    try:
        await then()
    except Exception:
        log.exception("the consequence of an audit entry failed")


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
        self.unsigned = 0  # entries sent without an identity signature though it has one
        self._queue: asyncio.Queue[_Item | None] = asyncio.Queue(max_pending)
        self._file: Any = None
        self._writer: asyncio.Task[None] | None = None
        self._urgent = asyncio.Event()  # set when an entry is waited for: send without linger
        self._eager = asyncio.Event()  # set when a queued entry is not lazy (or is urgent)

    async def open(self) -> None:
        """Make sure the cluster stream exists and start the writer."""
        await self.bus.streams.ensure(
            self.subjects.audit_stream,
            [self.subjects.audit_all],
            max_msgs=STREAM_MAX_MSGS,
            max_bytes=STREAM_MAX_BYTES,
        )
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = await asyncio.to_thread(open, self.path, "a", encoding="utf-8")
        self._writer = asyncio.create_task(self._write_loop(), name=f"audit-{self.agent_id}")

    async def record(
        self,
        event: str,
        *,
        then: Then | None = None,
        lazy: bool = False,
        span: SpanRecord | None = None,
        span_attributes: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> None:
        """Append one entry: ts (ms), agent, role, event, n (this process's count), fields,
        and `span`'s fields; with no `span` given, in a trace, a point span under the current
        (with `span_attributes`, e.g. the subject family it answers on).

        `then` (the entry's consequence, e.g. a reply) is awaited by the writer right after
        the frame holding the entry is on the connection (or its write failed and was
        logged), before anything else the writer sends: what it publishes reaches the server
        after the entry. `record` returns once the entry is queued; what `then` raises is
        logged. A `lazy` entry (no `then`) may wait up to _LAZY_LINGER for others.
        """
        self.recorded += 1
        entry = {
            "ts": int(time.time() * 1000),
            "agent": self.agent_id,
            "role": self.role,
            "event": str(event),
            "n": self.recorded,
            **fields,
        }
        if span is None and (parent := current_span.get()) is not None:
            span = point_span(parent, str(event), self.agent_id, time.time_ns(), span_attributes)
            emit_span(span)  # a timed span was handed over when it ended
        if span is not None:
            entry.update(span_fields(span))
        if then is not None and (self._writer is None or self._writer.done()):
            await then()  # closed: nothing to go behind
            return
        await self._put((entry, then))
        if then is not None:
            self._wake(urgent=True)  # someone waits for the consequence: no linger
        elif not lazy:
            self._eager.set()

    @contextlib.asynccontextmanager
    async def span(self, name: str, **attributes: Any) -> AsyncIterator[Span | None]:
        """Time the block as a span `name` of the current trace and record it (a lazy
        "span" entry); None, and nothing recorded, when no trace is current."""
        if current_span.get() is None:
            yield None
            return
        opened: Span | None = None
        try:
            with open_span(name, self.agent_id, **attributes) as opened:
                yield opened
        finally:  # an error or a cancellation is recorded too, with its outcome
            if opened is not None and opened.record is not None:
                await self.record(SPAN_EVENT, lazy=True, span=opened.record)

    async def flush(self) -> None:
        """Return once every entry recorded so far is on the connection to the stream
        (lifecycle entries: a crash right after must not take them along)."""
        if self._writer is None or self._writer.done():
            return
        done = asyncio.get_running_loop().create_future()

        async def mark() -> None:
            if not done.done():
                done.set_result(None)

        await self._put((None, mark))
        self._wake(urgent=True)
        await done

    def _wake(self, *, urgent: bool) -> None:
        self._eager.set()
        if urgent:
            self._urgent.set()

    async def _put(self, item: _Item) -> None:
        if self._queue.full():
            await self._queue.put(item)  # the writer is far behind: wait for room
        else:
            self._queue.put_nowait(item)

    async def close(self) -> None:
        """Write out every queued entry, fsync the file, stop the writer."""
        if self._writer is None:
            return
        await self._queue.put(None)
        self._wake(urgent=True)
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer
        self._writer = None
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None

    async def _write_loop(self) -> None:
        """Take what has queued, append it to the file, send it as one frame; up to
        _IN_FLIGHT frames await their acknowledgement while the next ones go out (in
        order: one connection, one stream)."""
        slots = asyncio.Semaphore(_IN_FLIGHT)
        confirming: set[asyncio.Task[None]] = set()
        done = False
        while not done:
            batch = [await self._queue.get()]
            if not self._eager.is_set() and self._queue.qsize() < _BATCH:  # only lazy ones
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._eager.wait(), _LAZY_LINGER)
            if self._eager.is_set() and not self._urgent.is_set():  # nobody waits yet:
                with contextlib.suppress(TimeoutError):  # let the batch fill a little
                    await asyncio.wait_for(self._urgent.wait(), _LINGER)
            self._urgent.clear()
            self._eager.clear()
            while len(batch) < _BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            if batch[-1] is None:
                done = True
            items = [item for item in batch if item is not None]
            entries = [entry for entry, _ in items if entry is not None]  # None: a flush mark
            if self._file is not None and entries:
                self._file.write("".join(json.dumps(e, default=str) + "\n" for e in entries))
                self._file.flush()
            await slots.acquire()
            sent = await self._send(entries) if entries else []
            for _, then in items:  # right behind the frame, ahead of anything else
                if then is not None:
                    await _follow(then)
            task = asyncio.create_task(self._confirm(sent, slots))
            confirming.add(task)
            task.add_done_callback(confirming.discard)
        await asyncio.gather(*confirming)

    async def _send(self, entries: list[dict[str, Any]]) -> list[tuple[Awaitable[int], int]]:
        """Hand a batch to the stream as one signed frame (halved if too big for one)."""
        try:
            body = self._body(entries)
            stored = await self.bus.streams.send(self.subject, body, kind="audit")
        except EncodeError:
            if len(entries) == 1:
                self._failed(1, "an entry too large for a frame")
                return []
            half = len(entries) // 2
            return [*await self._send(entries[:half]), *await self._send(entries[half:])]
        except AmcpError as exc:
            self._failed(len(entries), str(exc))
            return []
        return [(stored, len(entries))]

    def _body(self, entries: list[dict[str, Any]]) -> Any:
        identity = self.bus.identity
        if identity is not None and identity.agent_id != self.agent_id:
            identity = None  # it could not sign as this log's agent anyway
        try:
            return signed_body(identity, entries)
        except ValueError as exc:  # a field with no canonical form: better unverified than lost
            self.unsigned += len(entries)
            log.warning(
                "%d audit entries of %s sent unsigned: %s", len(entries), self.agent_id, exc
            )
            return entries

    async def _confirm(
        self, sent: list[tuple[Awaitable[int], int]], slots: asyncio.Semaphore
    ) -> None:
        """Await the stream's acknowledgements; count and log what it did not store."""
        try:
            for stored, count in sent:
                try:
                    await stored
                except AmcpError as exc:
                    self._failed(count, str(exc))
        finally:
            slots.release()

    def _failed(self, count: int, why: str) -> None:
        self.stream_failures += count
        log.warning(
            "%d audit entries of %s not stored in the stream: %s", count, self.agent_id, why
        )


class _MacOnly:
    """The guard of an Opener that checks the MAC and shape only: which replay window a
    stored frame is judged by depends on its identity signature, known after opening."""

    def check(self, *_: Any) -> None:
        return None

    def commit(self, *_: Any) -> None:
        return None


class _Windows:
    """Replay judgement of stored frames, apart for verified and unverified ones. A
    verified frame is dropped only if its signature was seen already (stored twice, or
    re-wrapped in a new envelope by a key holder): nothing about its envelope, which the
    identity signature does not cover, decides. Unverified frames have a window of their
    own (no skew limit: a log is old by design), so whatever they claim in a sender's
    name hides only other unverified frames."""

    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms
        self.unverified = ReplayGuard(4096, _TEN_YEARS_MS)
        self.signatures: set[bytes] = set()

    def refuse(self, env: Envelope, signature: bytes | None) -> str | None:
        """Why the frame is not shown (a Reason), or None; it is then recorded."""
        if signature is not None:
            if signature in self.signatures:
                return Reason.REPLAY
            self.signatures.add(signature)
            return None
        fields = (env.sender, env.epoch, env.seq, env.ts_ms, self.now_ms)
        reason = self.unverified.check(*fields)
        if reason is None:
            self.unverified.commit(*fields)
        return reason


async def read_cluster_log(
    bus: Bus, *, count: int | None = None, agent: str | None = None, timeout: float = 2.0
) -> tuple[list[AuditEntry], dict[str, int]]:
    """The last `count` entries (of one agent, or all), oldest first, each marked
    verified or not, and counts by reason of stored frames that were skipped (MAC, key,
    shape, replay, wrong sender) or shown unverified (`identity_<verdict>`, `identity_unsigned`)."""
    subjects = AgentSubjects(bus.subjects)
    subject = subjects.audit(agent) if agent else None
    frames = await bus.streams.read(
        subjects.audit_stream, subject=subject, last=count, timeout=timeout
    )
    stats = RejectionStats()
    opener = Opener(bus.keyring, limits=bus.limits, stats=stats, guard=_MacOnly())
    windows = _Windows(int(time.time() * 1000))
    entries: list[AuditEntry] = []
    for seq, subj, frame in frames:
        try:
            env = opener.open(subj, frame)
        except FrameRejected:
            continue
        batch, verdict = verify_body(bus.verifier, env.sender, env.body)
        if subj != subjects.audit(env.sender) or not all(
            isinstance(r, dict) and r.get("agent") == env.sender for r in batch
        ):
            stats.counts["wrong_sender"] += 1  # signed by one agent, claiming another
            continue
        verified = verdict is IdentityVerdict.OK
        reason = windows.refuse(env, env.body["sig"] if verified else None)
        if reason is not None:
            stats.counts[reason] += 1
            continue
        if bus.verifier is not None and not verified:
            stats.counts[
                "identity_unsigned" if verdict is None else f"identity_{verdict.value}"
            ] += 1
        entries.extend(AuditEntry(seq, i, env.sender, r, verified) for i, r in enumerate(batch))
    if count is not None:
        entries = entries[-count:]
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
