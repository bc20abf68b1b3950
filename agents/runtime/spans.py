"""Spans in the audit log: the fields an entry carries for its span, reading them back, and
the tree of one trace's spans across agents with its slowest path.

An entry's span fields: trace_id, span_id, parent_id (None for a root), op, start_us (wall
clock, microseconds since the epoch: integers, exact where a float of ms would round),
duration_us, outcome, and for a timed span its attributes as `attrs`. Entries from before
spans, or recorded outside a trace, have none and read back as no span. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from amcp.tracing import SpanContext, SpanRecord

__all__ = [
    "SPAN_EVENT",
    "SpanNode",
    "point_span",
    "span_fields",
    "span_of",
    "span_tree",
    "traces_of",
]

SPAN_EVENT = "span"  # the event of an entry that records a timed span
_TRACE_ID = re.compile(r"[0-9a-f]{32}")
_SPAN_ID = re.compile(r"[0-9a-f]{16}")


def point_span(
    parent: SpanContext, name: str, agent: str, at: int, attributes: Mapping[str, Any] | None = None
) -> SpanRecord:
    """An entry recorded in a trace at `at` (ns), a span of no duration under the current."""
    return SpanRecord(
        parent.trace_id,
        parent.child().span_id,
        parent.span_id,
        name,
        agent,
        at,
        at,
        "ok",
        dict(attributes) if attributes else {},
    )


def span_fields(record: SpanRecord) -> dict[str, Any]:
    """The audit entry fields of `record` (its agent is the entry's own)."""
    fields: dict[str, Any] = {
        "trace_id": record.trace_id,
        "span_id": record.span_id,
        "parent_id": record.parent_id,
        "op": record.name,
        "start_us": record.start_ns // 1000,
        "duration_us": record.duration_ns // 1000,
        "outcome": record.outcome,
    }
    if record.attributes:
        fields["attrs"] = dict(record.attributes)
    return fields


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def span_of(entry: Mapping[str, Any]) -> SpanRecord | None:
    """The span an audit entry records, or None if it has no (well-formed) span fields."""
    trace, span, parent = entry.get("trace_id"), entry.get("span_id"), entry.get("parent_id")
    if not (isinstance(trace, str) and _TRACE_ID.fullmatch(trace)):
        return None
    if not (isinstance(span, str) and _SPAN_ID.fullmatch(span)):
        return None
    if parent is not None and not (isinstance(parent, str) and _SPAN_ID.fullmatch(parent)):
        return None
    op, outcome = entry.get("op"), entry.get("outcome", "ok")
    start, duration = entry.get("start_us"), entry.get("duration_us", 0)
    if not (isinstance(op, str) and isinstance(outcome, str) and _count(start)):
        return None
    if not _count(duration):
        return None
    attrs = entry.get("attrs")
    return SpanRecord(
        trace,
        span,
        parent,
        op,
        str(entry.get("agent", "")),
        start * 1000,
        (start + duration) * 1000,
        outcome,
        dict(attrs) if isinstance(attrs, dict) else {},
    )


@dataclass(frozen=True, slots=True)
class SpanNode:
    """A span with the spans under it, in start order; `slowest`: on the slowest path."""

    span: SpanRecord
    children: tuple[SpanNode, ...]
    slowest: bool = False


def _slowest_path(roots: list[SpanRecord], kids: Mapping[str, list[SpanRecord]]) -> set[str]:
    """From the longest root, down through the longest child each time (of two as long, the
    one that ended last): where the time went."""
    path: set[str] = set()
    here = max(roots, key=lambda s: (s.duration_ns, -s.start_ns), default=None)
    while here is not None and here.span_id not in path:
        path.add(here.span_id)
        timed = [c for c in kids.get(here.span_id, ()) if c.duration_ns > 0]
        here = max(timed, key=lambda s: (s.duration_ns, s.end_ns), default=None)
    return path


def span_tree(spans: Iterable[SpanRecord]) -> list[SpanNode]:
    """The trees of `spans` (one trace's, from any agents), roots in start order. A span
    whose parent is not among them (the command line's, a caller outside the log) is a
    root; a span id seen twice keeps its first record."""
    unique: dict[str, SpanRecord] = {}
    for s in spans:
        unique.setdefault(s.span_id, s)
    kids: dict[str, list[SpanRecord]] = {}
    roots: list[SpanRecord] = []
    for s in unique.values():
        if s.parent_id is not None and s.parent_id in unique and s.parent_id != s.span_id:
            kids.setdefault(s.parent_id, []).append(s)
        else:
            roots.append(s)
    order = lambda s: (s.start_ns, s.end_ns)  # noqa: E731
    for group in (roots, *kids.values()):
        group.sort(key=order)
    slowest = _slowest_path(roots, kids)
    seen: set[str] = set()

    def node(s: SpanRecord) -> SpanNode:
        seen.add(s.span_id)
        below = tuple(node(c) for c in kids.get(s.span_id, ()) if c.span_id not in seen)
        return SpanNode(s, below, s.span_id in slowest)

    trees = [node(r) for r in roots]
    # a cycle of parent ids (only a forger could make one) has no root: show it anyway
    trees += [node(s) for s in unique.values() if s.span_id not in seen]
    return trees


def _names(record: Mapping[str, Any], ident: str) -> bool:
    return ident in (record.get("trace_id"), record.get("task"), record.get("proposal"))


def traces_of(records: Iterable[Mapping[str, Any]], ident: str) -> list[str]:
    """The traces `ident` names, in the order the log first shows them: a trace id itself,
    or the traces of the entries naming it as their task or proposal."""
    found: dict[str, None] = {}
    for record in records:
        trace = record.get("trace_id")
        if isinstance(trace, str) and _names(record, ident):
            found.setdefault(trace, None)
    return list(found)
