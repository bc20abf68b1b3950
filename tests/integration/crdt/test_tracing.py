"""CRDT replication in a trace, on a real nats-server: a write made in a span travels in it
(its delta frames carry the traceparent), the writer records `crdt.replicate` and every
replica that merges it `crdt.merge`, both under the writer's span; an untraced write
records nothing."""

from __future__ import annotations

from amcp.tracing import SpanRecord, new_trace, use_span
from crdt import ContextStore
from tests.support.waiting import wait_until


async def test_a_traced_write_is_replicated_and_merged_under_its_span(
    members: list[ContextStore], spans: list[SpanRecord]
) -> None:
    m0, m1, m2 = members
    await m0.incr("untraced", 1)
    await wait_until(lambda: m1.local("untraced") == m2.local("untraced") == 1, what="untraced")
    assert spans == []  # outside a trace nothing is recorded
    ctx = new_trace()
    with use_span(ctx):
        await m0.incr("traced", 2)
    await wait_until(lambda: m1.local("traced") == m2.local("traced") == 2, what="replication")
    await wait_until(lambda: len([s for s in spans if s.name == "crdt.merge"]) == 2, what="merges")
    assert all((s.trace_id, s.parent_id) == (ctx.trace_id, ctx.span_id) for s in spans)
    (sent,) = [s for s in spans if s.name == "crdt.replicate"]
    assert (sent.agent, sent.outcome, sent.attributes["records"]) == ("m0", "ok", 1)
    assert sent.attributes["family"].endswith(".ctx.delta")
    merged = sorted((s for s in spans if s.name == "crdt.merge"), key=lambda s: s.agent)
    assert [(s.agent, s.outcome, s.attributes["peer"]) for s in merged] == [
        ("m1", "ok", "m0"),
        ("m2", "ok", "m0"),
    ]
    assert all(s.start_ns >= sent.start_ns for s in merged)
