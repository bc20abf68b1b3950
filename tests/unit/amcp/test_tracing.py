"""W3C trace context parsing, the current span and span records handed to listeners."""

from __future__ import annotations

import logging
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amcp import tracing
from amcp.tracing import (
    SpanContext,
    SpanRecord,
    current_span,
    from_environ,
    new_trace,
    parse_traceparent,
    parse_tracestate,
    span,
    use_span,
)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
HEX = "0123456789abcdef"


def test_a_valid_header_gives_its_fields() -> None:
    ctx = parse_traceparent(f"00-{TRACE}-{PARENT}-01", "congo=t61rcWkgMzE")
    assert ctx == SpanContext(TRACE, PARENT, 1, "congo=t61rcWkgMzE")
    assert ctx.traceparent == f"00-{TRACE}-{PARENT}-01"


@pytest.mark.parametrize(
    "value",
    [
        "",
        f"00-{TRACE}-{PARENT}-1",  # short flags
        f"00-{TRACE}-{PARENT}-01-",  # version 00 is exactly 55 characters
        f"00-{TRACE}-{PARENT}-01-what",
        f"00-{TRACE.upper()}-{PARENT}-01",  # lowercase hex only
        f"00-{TRACE}-{PARENT.upper()}-01",
        f"00-{TRACE}-{PARENT}-0A",
        f"0a-{TRACE}-{PARENT}-01x",  # later version: after flags, the end or a dash
        f"ff-{TRACE}-{PARENT}-01",  # version ff is never valid
        f"00-{'0' * 32}-{PARENT}-01",  # all-zero ids are invalid
        f"00-{TRACE}-{'0' * 16}-01",
        f"00-{TRACE[:-1]}g-{PARENT}-01",
        f"00_{TRACE}-{PARENT}-01",
        f" 00-{TRACE}-{PARENT}-01",
    ],
)
def test_an_invalid_header_gives_none(value: str) -> None:
    assert parse_traceparent(value) is None


def test_a_later_version_is_read_for_its_first_fields() -> None:
    # Trace Context, "Versioning of traceparent": parse what version 00 defines, keep sampled.
    ctx = parse_traceparent(f"cc-{TRACE}-{PARENT}-03-what-the-future-holds")
    assert ctx == SpanContext(TRACE, PARENT, 1)
    assert parse_traceparent(f"01-{TRACE}-{PARENT}-00") == SpanContext(TRACE, PARENT, 0)
    # ...and is carried on as version 00, which this side speaks
    assert ctx is not None and ctx.traceparent == f"00-{TRACE}-{PARENT}-01"


@pytest.mark.parametrize(
    "state, kept",
    [
        ("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
        (" a=1 ,\t, b@sys=2", "a=1,b@sys=2"),  # spaces around and empty members are allowed
        ("a=1,a=2", ""),  # a key at most once
        ("A=1", ""),  # keys are lowercase
        ("a=1,b", ""),
        ("a=x=y=", ""),  # '=' is not a value character... except none at the end
        ("a=" + "x" * 600, ""),  # over 512 bytes: dropped, not cut into a different list
        (",".join(f"k{i}=v" for i in range(33)), ""),  # at most 32 members
    ],
)
def test_tracestate_is_kept_only_if_valid(state: str, kept: str) -> None:
    assert parse_tracestate(state) == kept
    ctx = parse_traceparent(f"00-{TRACE}-{PARENT}-01", state)
    assert ctx is not None and ctx.state == kept  # a bad state drops alone, not the parent


def _reference_v00(value: str) -> tuple[str, str, int] | None:
    """Version 00 checked character by character, independently of the module's regex."""
    if len(value) != 55 or [value[i] for i in (2, 35, 52)] != ["-"] * 3 or value[:2] != "00":
        return None
    trace, parent, flags = value[3:35], value[36:52], value[53:55]
    if not all(c in HEX for c in trace + parent + flags):
        return None
    if set(trace) == {"0"} or set(parent) == {"0"}:
        return None
    return trace, parent, int(flags, 16)


hex_ids = st.text(st.sampled_from(HEX), min_size=32, max_size=32)
span_ids = st.text(st.sampled_from(HEX), min_size=16, max_size=16)


@given(hex_ids, span_ids, st.integers(0, 255))
def test_a_context_round_trips_through_its_header(trace: str, parent: str, flags: int) -> None:
    ctx = SpanContext(trace, parent, flags)
    parsed = parse_traceparent(ctx.traceparent)
    expected = _reference_v00(ctx.traceparent)
    assert (parsed is None) == (expected is None)
    if parsed is not None:
        assert parsed == ctx


def _mutations(value: str) -> st.SearchStrategy[str]:
    at = st.integers(0, len(value) - 1)
    char = st.sampled_from(HEX + HEX.upper() + "-xg ")
    replaced = st.tuples(at, char).map(lambda p: value[: p[0]] + p[1] + value[p[0] + 1 :])
    dropped = at.map(lambda i: value[:i] + value[i + 1 :])
    return st.one_of(replaced, dropped, char.map(lambda c: value + c))


@given(st.data())
def test_any_one_character_change_agrees_with_the_reference(data: st.DataObject) -> None:
    value = data.draw(_mutations(f"00-{TRACE}-{PARENT}-01"))
    parsed = parse_traceparent(value)
    expected = _reference_v00(value)
    got = None if parsed is None else (parsed.trace_id, parsed.span_id, parsed.flags)
    if value[:2] == "00":
        assert got == expected, value
    elif got is not None:  # a later version: the first four fields as version 00 has them
        assert value[:2] != "ff" and value[55:56] in ("", "-"), value


@given(st.text(string.printable, max_size=80), st.text(max_size=80))
def test_anything_parses_or_gives_none_never_raises(value: str, state: str) -> None:
    parsed = parse_traceparent(value, state)
    if parsed is not None:
        assert parse_traceparent(parsed.traceparent, parsed.state) == parsed


def test_new_traces_and_children() -> None:
    root = new_trace()
    assert parse_traceparent(root.traceparent) == root
    child = root.child()
    assert (child.trace_id, child.flags) == (root.trace_id, root.flags)
    assert child.span_id != root.span_id
    assert len({new_trace().trace_id for _ in range(100)}) == 100


def test_from_environ_continues_a_valid_traceparent_else_starts_one() -> None:
    env = {"TRACEPARENT": f"00-{TRACE}-{PARENT}-01", "TRACESTATE": "a=1"}
    ctx = from_environ(env)
    assert (ctx.trace_id, ctx.state) == (TRACE, "a=1") and ctx.span_id != PARENT
    for bad in ({}, {"TRACEPARENT": "garbage"}, {"TRACEPARENT": f"00-{TRACE}-{'0' * 16}-01"}):
        fresh = from_environ(bad)
        assert fresh.trace_id != TRACE and parse_traceparent(fresh.traceparent) == fresh


def test_use_span_sets_and_restores_the_current_span() -> None:
    ctx = new_trace()
    assert current_span.get() is None
    with use_span(ctx):
        assert current_span.get() is ctx
        with use_span(None):
            assert current_span.get() is None
        assert current_span.get() is ctx
    assert current_span.get() is None


def test_spans_nest_under_the_current_one_and_reach_listeners(spans: list[SpanRecord]) -> None:
    with span("task", "s3", task="t-1") as outer:
        with span("tool.call", "s1") as inner:
            assert current_span.get() == inner.context
        assert current_span.get() == outer.context
    assert current_span.get() is None
    assert [r.name for r in spans] == ["tool.call", "task"]
    tool, task = spans
    assert task.parent_id is None and task.attributes == {"task": "t-1"}
    assert (tool.trace_id, tool.parent_id, tool.agent) == (task.trace_id, task.span_id, "s1")
    assert task.start_ns <= tool.start_ns <= tool.end_ns <= task.end_ns
    assert all(r.outcome == "ok" for r in spans)


def test_a_span_that_raises_is_an_error_unless_it_said(spans: list[SpanRecord]) -> None:
    with pytest.raises(KeyError), span("a", "x"):
        raise KeyError("k")
    with pytest.raises(KeyError), span("b", "x") as b:
        b.outcome = "timeout"
        raise KeyError("k")
    with span("c", "x", parent=SpanContext(TRACE, PARENT)) as c:
        c.outcome = "refused"
    assert [(r.name, r.outcome) for r in spans] == [
        ("a", "error"),
        ("b", "timeout"),
        ("c", "refused"),
    ]
    assert (spans[2].trace_id, spans[2].parent_id) == (TRACE, PARENT)


def test_a_listener_that_raises_is_logged_and_the_others_still_hear(
    spans: list[SpanRecord], caplog: pytest.LogCaptureFixture
) -> None:
    def broken(record: SpanRecord) -> None:
        raise RuntimeError("exporter down")

    tracing.add_span_listener(broken)
    tracing.add_span_listener(broken)  # once only
    try:
        with caplog.at_level(logging.ERROR, "amcp.tracing"), span("op", "x"):
            pass
    finally:
        tracing.remove_span_listener(broken)
    tracing.remove_span_listener(broken)  # removing an absent listener is harmless
    assert [r.name for r in spans] == ["op"]
    assert sum("exporter down" in (r.exc_text or "") for r in caplog.records) == 1
    record = spans[0]
    assert record.duration_ns == record.end_ns - record.start_ns >= 0
    assert record.to_dict()["parent_id"] is None


def test_with_trace_adds_the_current_span_and_received_reads_it_back() -> None:
    headers = {"n": "1"}
    assert tracing.with_trace(headers) is headers and tracing.with_trace(None) is None
    ctx = SpanContext(TRACE, PARENT, 1, "a=1")
    with use_span(ctx):
        carried = tracing.with_trace(headers)
        assert carried == {"traceparent": ctx.traceparent, "tracestate": "a=1", "n": "1"}
        assert tracing.with_trace({"traceparent": "mine"})["traceparent"] == "mine"
        assert tracing.with_trace(None) == {"traceparent": ctx.traceparent, "tracestate": "a=1"}
    assert headers == {"n": "1"}  # the caller's dict is not changed
    assert tracing.received(carried) == ctx
    assert tracing.received({"n": "1"}) is None
    assert tracing.received({"traceparent": "00-bad"}) is None


def test_the_same_header_gives_the_same_context_object() -> None:
    # a span's stream of messages is parsed once; the Subscription then sets it once
    value = f"00-{TRACE}-{PARENT}-01"
    first = tracing.received({"traceparent": "".join(value)})
    assert first is tracing.received({"traceparent": "".join(value)}) is not None
    assert tracing.received({"traceparent": value, "tracestate": "a=1"}) != first


def test_a_leaf_span_hangs_under_the_current_one_and_never_becomes_current(
    spans: list[SpanRecord],
) -> None:
    assert tracing.leaf_span("crdt.merge", "m1", 0) is None and spans == []  # no trace
    ctx = SpanContext(TRACE, PARENT)
    with use_span(ctx):
        leaf = tracing.leaf_span("crdt.merge", "m1", 5, "partial", applied=2)
        assert current_span.get() is ctx
    assert spans == [leaf]
    assert leaf is not None and (leaf.trace_id, leaf.parent_id) == (TRACE, PARENT)
    assert (leaf.start_ns, leaf.outcome, leaf.attributes) == (5, "partial", {"applied": 2})
    assert leaf.end_ns >= leaf.start_ns and leaf.span_id != PARENT
