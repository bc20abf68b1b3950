"""`amcp trace ID`: the spans of a trace across agents, from the cluster's audit log, as a
tree: agent, operation, start offset, duration, outcome, the slowest path marked `*`.

ID is a trace id, a task id or a proposal id (the traces of the entries naming it). Only
entries whose identity signature verifies against the roster are read: a forged entry,
which anyone holding the cluster key could write, never joins a trace.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from amcp.cli.common import EXIT_OK, add_connection_options, connect, emit
from amcp.errors import ConfigError

if TYPE_CHECKING:
    from agents.runtime.spans import SpanNode

__all__ = ["register_trace", "render_trace"]

EXIT_UNKNOWN = 1


SCAN = 100_000
"""Audit entries `amcp trace` reads by default, and a filtered `amcp log` (--task, --trace,
--verified-only) searches at most, the newest first, for its last --count matches."""


def register_trace(sub: argparse._SubParsersAction) -> None:
    cmd = sub.add_parser(
        "trace",
        help="show a trace's spans across agents",
        description="Print the spans of a trace from the cluster's audit log as a tree: agent, "
        "operation, start offset, duration and outcome, the slowest path marked '*'. ID is a "
        "trace id, a task id or a proposal id. Only entries signed by their agent's identity "
        "(per the roster) are read.",
    )
    cmd.add_argument("id", metavar="ID", help="a trace id (32 hex), a task id or a proposal id")
    cmd.add_argument(
        "--count",
        type=int,
        default=SCAN,
        metavar="N",
        help=f"read the last N audit entries (default {SCAN})",
    )
    add_connection_options(cmd)
    cmd.set_defaults(func=cmd_trace)


def _lines(node: SpanNode, origin: int, depth: int, out: list[str]) -> None:
    s = node.span
    offset = (s.start_ns - origin) / 1e6
    mark = "*" if node.slowest else " "
    what = "  " * depth + s.name
    out.append(
        f"{mark} {offset:10.3f} ms {s.duration_ns / 1e6:10.3f} ms  {s.agent:<16} {what:<40} "
        f"{s.outcome}".rstrip()
    )
    for child in node.children:
        _lines(child, origin, depth + 1, out)


def render_trace(trace_id: str, trees: list[SpanNode]) -> str:
    """The human view of one trace's trees."""
    spans = [n.span for n in _walk(trees)]
    origin = min(s.start_ns for s in spans)
    total = (max(s.end_ns for s in spans) - origin) / 1e6
    agents = len({s.agent for s in spans})
    head = f"trace {trace_id}: {len(spans)} spans, {agents} agents, {total:.3f} ms"
    out = [head, f"  {'offset':>13} {'duration':>13}  {'agent':<16} operation"]
    for tree in trees:
        _lines(tree, origin, 0, out)
    return "\n".join(out)


def _walk(trees: list[SpanNode]) -> list[SpanNode]:
    out: list[SpanNode] = []
    stack = list(reversed(trees))
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(reversed(node.children))
    return out


def cmd_trace(args: argparse.Namespace) -> int:
    import asyncio

    from agents.runtime.audit import read_cluster_log
    from agents.runtime.spans import span_tree, traces_of

    if args.count < 1:
        raise ConfigError("--count must be at least 1")

    async def main() -> int:
        bus = await connect(args, trace=False)  # reading the log is no part of a trace
        try:
            if bus.verifier is None:
                raise ConfigError(
                    "amcp trace needs a roster (--roster PATH or AMCP_ROSTER): only entries "
                    "signed by their agent's identity may join a trace"
                )
            entries, _ = await read_cluster_log(bus, count=args.count)
        finally:
            await bus.close()
        verified = [e for e in entries if e.verified]
        traces = traces_of((e.record for e in verified), args.id)
        if not traces:
            print(f"amcp: no trace, task or proposal {args.id!r} in the audit log", file=sys.stderr)
            return EXIT_UNKNOWN
        for trace_id in traces:
            spans = [s for e in verified if (s := e.span) is not None and s.trace_id == trace_id]
            trees = span_tree(spans)
            if args.json:
                docs = [{**n.span.to_dict(), "slowest": n.slowest} for n in _walk(trees)]
                emit({"trace_id": trace_id, "spans": docs}, True)
            else:
                print(render_trace(trace_id, trees))
        return EXIT_OK

    return asyncio.run(main())
