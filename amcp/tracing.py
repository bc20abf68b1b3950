"""Trace context across agents: W3C `traceparent`/`tracestate`, the current span, span records.

A span is one hop that does work (a command, a tool call, a task step, a ballot, a CRDT
write). Its context travels in the signed envelope headers (`traceparent`, `tracestate`,
https://www.w3.org/TR/trace-context/), so a receiver continues the sender's trace and a
forger cannot graft frames onto one. Pure: no I/O, no asyncio; the Bus, the audit log and
exporters (OpenTelemetry) build on it. Every finished span is handed to the listeners.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "TRACEPARENT",
    "TRACESTATE",
    "Span",
    "SpanContext",
    "SpanListener",
    "SpanRecord",
    "add_span_listener",
    "continue_trace",
    "current_span",
    "emit_span",
    "environ_parent",
    "from_environ",
    "group_spans",
    "leaf_span",
    "new_trace",
    "parse_traceparent",
    "parse_tracestate",
    "received",
    "remove_span_listener",
    "span",
    "use_span",
    "with_trace",
]

TRACEPARENT = "traceparent"  # header names, lowercase as the W3C spec and HTTP/2 write them
TRACESTATE = "tracestate"
MAX_TRACESTATE = 512  # bytes: the spec asks carriers to pass at least this much; we pass no more
_MAX_MEMBERS = 32

_log = logging.getLogger(__name__)

_V00 = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
# A later version: its first four fields as version 00 has them, then the end or '-...'.
_FUTURE = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?", re.S)
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
_KEY = r"(?:[a-z][a-z0-9_\-*/]{0,255}|[a-z0-9][a-z0-9_\-*/]{0,240}@[a-z][a-z0-9_\-*/]{0,13})"
_MEMBER = re.compile(_KEY + r"=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]")


@dataclass(frozen=True, slots=True)
class SpanContext:
    """Where a hop sits in a trace: the trace, this span, the W3C flags and vendor state."""

    trace_id: str  # 32 lowercase hex, not all zero
    span_id: str  # 16 lowercase hex, not all zero
    flags: int = 1  # bit 0: sampled
    state: str = ""  # tracestate, carried as received
    # The header, made once: a span's context goes on every message it sends.
    traceparent: str = field(init=False, repr=False, compare=False)
    carried: dict[str, str] = field(init=False, repr=False, compare=False)
    """The headers a message sent in this span carries (shared: never change it)."""

    def __post_init__(self) -> None:
        header = f"00-{self.trace_id}-{self.span_id}-{self.flags:02x}"
        object.__setattr__(self, "traceparent", header)
        carried = (
            {TRACEPARENT: header, TRACESTATE: self.state} if self.state else {TRACEPARENT: header}
        )
        object.__setattr__(self, "carried", carried)

    def child(self) -> SpanContext:
        """A new span in the same trace (its parent is this one)."""
        return SpanContext(self.trace_id, _span_id(), self.flags, self.state)


def _span_id() -> str:
    # Random, not secret: ids only need to be unique; getrandbits is ~10x os.urandom's speed.
    return f"{random.getrandbits(64) or 1:016x}"


def new_trace() -> SpanContext:
    """The root span of a new, sampled trace."""
    return SpanContext(f"{random.getrandbits(128) or 1:032x}", _span_id())


def parse_tracestate(value: str) -> str:
    """`value` if it is a valid tracestate list (at most 32 members, 512 bytes), else ""."""
    if not value or len(value) > MAX_TRACESTATE:
        return ""
    members = [m.strip(" \t") for m in value.split(",")]
    members = [m for m in members if m]  # empty members are allowed and mean nothing
    if len(members) > _MAX_MEMBERS or not all(_MEMBER.fullmatch(m) for m in members):
        return ""
    keys = [m.split("=", 1)[0] for m in members]
    return ",".join(members) if len(set(keys)) == len(keys) else ""


def parse_traceparent(value: str, tracestate: str = "") -> SpanContext | None:
    """The context a `traceparent` header names, or None if it is not valid W3C trace context.

    Version 00 must be exactly 55 characters of lowercase hex and dashes. A later version is
    read for its first four fields if what follows them is nothing or a dash; version ff is
    never valid. All-zero trace or span ids are invalid. A bad tracestate is dropped alone.
    """
    match = _V00.fullmatch(value)
    if match is None:
        match = _FUTURE.fullmatch(value)
        if match is None or match[1] in ("00", "ff"):
            return None
        trace_id, span_id, flags = match[2], match[3], int(match[4], 16) & 0x01
    else:
        trace_id, span_id, flags = match[1], match[2], int(match[3], 16)
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return SpanContext(trace_id, span_id, flags, parse_tracestate(tracestate) if tracestate else "")


# The span the running task works in; None when nothing traces (the Bus then adds nothing).
current_span: ContextVar[SpanContext | None] = ContextVar("amcp_current_span", default=None)


# The spans of the messages of a group a sender is handed (amcp.groupcommit sets it around
# the call; Bus.publish_group gives each message its own): a group is sent from a loop
# callback, in none of its messages' contexts.
group_spans: ContextVar[tuple[SpanContext | None, ...] | None] = ContextVar(
    "amcp_group_spans", default=None
)


def with_trace(headers: dict[str, str] | None) -> dict[str, str] | None:
    """`headers` with the current span's `traceparent` (and `tracestate`) added, for a message
    about to be signed; `headers` itself when no span is current. A caller's own wins."""
    ctx = current_span.get()
    if ctx is None:
        return headers
    return {**ctx.carried, **headers} if headers else ctx.carried


def received(headers: Mapping[str, str]) -> SpanContext | None:
    """The valid trace context a received message's headers carry, else None (ignored).
    The same headers give the same (immutable) context object."""
    value = headers.get(TRACEPARENT)
    return None if value is None else _parse_cached(value, headers.get(TRACESTATE, ""))


# A span sends many messages with one header: parse each header once, not per message (the
# parse is 1.5 us, three times the rest of receiving one). Bounded: distinct headers from a
# flood cost a parse each, never memory.
_parse_cached = functools.lru_cache(maxsize=1024)(parse_traceparent)


def continue_trace(traceparent: object, tracestate: object = "") -> SpanContext:
    """A child of the span `traceparent` names if it is a valid one, else a new trace:
    where work starts on someone else's behalf (a command, an MCP call's `_meta`)."""
    if not isinstance(traceparent, str):
        return new_trace()
    state = tracestate if isinstance(tracestate, str) else ""
    parent = parse_traceparent(traceparent, state)
    return new_trace() if parent is None else parent.child()


def environ_parent(env: Mapping[str, str] | None = None) -> SpanContext | None:
    """The span `TRACEPARENT`/`TRACESTATE` in the environment name, if valid."""
    env = os.environ if env is None else env
    value = env.get("TRACEPARENT")
    return None if value is None else parse_traceparent(value, env.get("TRACESTATE", ""))


def from_environ(env: Mapping[str, str] | None = None) -> SpanContext:
    """A child of `TRACEPARENT`/`TRACESTATE` from the environment if valid, else a new trace."""
    env = os.environ if env is None else env
    return continue_trace(env.get("TRACEPARENT"), env.get("TRACESTATE", ""))


@contextlib.contextmanager
def use_span(context: SpanContext | None) -> Iterator[SpanContext | None]:
    """Run the block with `context` as the current span, restored after."""
    token = current_span.set(context)
    try:
        yield context
    finally:
        current_span.reset(token)


@dataclass(frozen=True, slots=True)
class SpanRecord:
    """A finished span as the audit log keeps it and exporters receive it."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str  # the operation, e.g. "tool.call", "task.s3", "vote.ballot"
    agent: str
    start_ns: int  # wall clock, ns since the epoch
    end_ns: int
    outcome: str = "ok"
    attributes: Mapping[str, Any] = field(default_factory=dict)

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns

    def to_dict(self) -> dict[str, Any]:
        return {
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_id": self.parent_id,
            "name": self.name,
            "agent": self.agent,
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "outcome": self.outcome,
            "attributes": dict(self.attributes),
        }


@dataclass(slots=True)
class Span:
    """A span being timed: its context is current inside `span(...)`; `end` records it."""

    context: SpanContext
    parent_id: str | None
    name: str
    agent: str
    start_ns: int
    attributes: dict[str, Any] = field(default_factory=dict)
    outcome: str = "ok"
    record: SpanRecord | None = None  # once ended

    def end(self, outcome: str | None = None, end_ns: int | None = None) -> SpanRecord:
        """The finished record (kept in `record`), handed to every listener."""
        record = self.record = SpanRecord(
            self.context.trace_id,
            self.context.span_id,
            self.parent_id,
            self.name,
            self.agent,
            self.start_ns,
            time.time_ns() if end_ns is None else end_ns,
            self.outcome if outcome is None else outcome,
            dict(self.attributes),
        )
        emit_span(record)
        return record


@contextlib.contextmanager
def span(
    name: str, agent: str, parent: SpanContext | None = None, **attributes: Any
) -> Iterator[Span]:
    """A child of `parent` (default: the current span; none: a new trace), current in the block.

    The outcome is "error" if the block raises (unless it set one), else what it set ("ok").
    """
    parent = current_span.get() if parent is None else parent
    context = new_trace() if parent is None else parent.child()
    opened = Span(
        context, parent.span_id if parent else None, name, agent, time.time_ns(), attributes
    )
    token = current_span.set(context)
    try:
        yield opened
    except BaseException:
        if opened.outcome == "ok":
            opened.outcome = "error"
        raise
    finally:
        current_span.reset(token)
        opened.end()


def leaf_span(
    name: str, agent: str, start_ns: int, outcome: str = "ok", **attributes: Any
) -> SpanRecord | None:
    """A span under the current one that ran from `start_ns` until now, handed to the
    listeners; None (and nothing done) outside a trace. It never becomes current: for work
    whose own effects stay in the sender's span (a replica merging deltas), so what they
    cause is parented where the audit log can find its parent."""
    parent = current_span.get()
    if parent is None:
        return None
    record = SpanRecord(
        parent.trace_id,
        _span_id(),
        parent.span_id,
        name,
        agent,
        start_ns,
        time.time_ns(),
        outcome,
        attributes,
    )
    emit_span(record)
    return record


SpanListener = Callable[[SpanRecord], object]
_listeners: list[SpanListener] = []


def add_span_listener(listener: SpanListener) -> None:
    """Hand every finished span to `listener` (e.g. an OpenTelemetry exporter), once each."""
    if listener not in _listeners:
        _listeners.append(listener)


def remove_span_listener(listener: SpanListener) -> None:
    with contextlib.suppress(ValueError):
        _listeners.remove(listener)


def emit_span(record: SpanRecord) -> None:
    """Give `record` to the listeners; one that raises is logged and never breaks the caller."""
    for listener in tuple(_listeners):
        try:
            listener(record)
        except Exception:
            _log.exception("span listener %r failed on %s", listener, record.name)
