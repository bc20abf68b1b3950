"""Spans in audit entries: their fields read back, the tree of a trace, the slowest path,
the traces an id names, and the rendering `amcp trace` prints."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from agents.cli.trace import render_trace
from agents.runtime.spans import point_span, span_fields, span_of, span_tree, traces_of
from amcp.tracing import SpanContext, SpanRecord

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
HEX = "0123456789abcdef"


def rec(span: str, parent: str | None, start: int, end: int, agent: str = "a") -> SpanRecord:
    """A span of TRACE with ids made from one hex digit, times in ms."""
    return SpanRecord(
        TRACE,
        span * 16,
        None if parent is None else parent * 16,
        f"op{span}",
        agent,
        start * 1_000_000,
        end * 1_000_000,
    )


ids = st.text(st.sampled_from(HEX), min_size=16, max_size=16).filter(lambda s: set(s) != {"0"})
records = st.builds(
    lambda span, parent, start, length, name, agent, outcome, attrs: SpanRecord(
        TRACE, span, parent, name, agent, start * 1000, (start + length) * 1000, outcome, attrs
    ),
    ids,
    st.none() | ids,
    st.integers(0, 2**53),
    st.integers(0, 10**9),
    st.text(min_size=1, max_size=20),
    st.text(max_size=20),
    st.sampled_from(["ok", "failed", "refused", "error"]),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
)


@given(records)
def test_an_entrys_span_reads_back_as_recorded(record: SpanRecord) -> None:
    entry = {"ts": 1, "agent": record.agent, "event": "span", **span_fields(record)}
    assert span_of(entry) == record


FIELDS = ["trace_id", "span_id", "parent_id", "op", "start_us", "duration_us", "outcome", "attrs"]
VALUES = st.none() | st.integers(-5, 5) | st.text(max_size=40) | st.booleans()


@given(st.dictionaries(st.sampled_from([*FIELDS, "agent"]), VALUES))
def test_anything_else_is_no_span_never_an_error(entry: dict) -> None:
    span = span_of(entry)
    assert span is None or (span.duration_ns >= 0 and len(span.trace_id) == 32)


def test_entries_without_spans_and_bad_fields_read_as_none() -> None:
    good = {"agent": "a", **span_fields(rec("1", None, 1, 2))}
    assert span_of(good) is not None
    assert span_of({"ts": 1, "agent": "a", "event": "started"}) is None  # an old entry
    bad_fields = [
        ("trace_id", "0" * 31),
        ("span_id", "X" * 16),
        ("parent_id", "short"),
        ("start_us", -1),
        ("start_us", 1.5),
        ("duration_us", True),
        ("op", 3),
    ]
    for key, bad in bad_fields:
        assert span_of({**good, key: bad}) is None, key


def test_a_point_span_sits_under_the_current_one() -> None:
    parent = SpanContext(TRACE, "1" * 16)
    point = point_span(parent, "vote", "s2-a", 5_000)
    assert (point.trace_id, point.parent_id, point.name, point.agent) == (
        TRACE,
        "1" * 16,
        "vote",
        "s2-a",
    )
    assert point.start_ns == point.end_ns == 5_000 and point.span_id != "1" * 16


def test_the_tree_nests_by_parent_and_marks_the_slowest_path() -> None:
    spans = [
        rec("2", "1", 10, 20),  # children listed before their parent, out of order
        rec("4", "2", 12, 18),
        rec("1", "9", 0, 100),  # its parent (the command line's span) is not in the log
        rec("3", "1", 30, 90),
        rec("5", "3", 40, 40),  # a point: never on the path
        rec("6", "3", 50, 60),
        rec("2", "1", 99, 99),  # a span id seen twice keeps the first
    ]
    (root,) = span_tree(spans)
    assert root.span.span_id == "1" * 16 and root.slowest
    assert [c.span.span_id[0] for c in root.children] == ["2", "3"]
    first, second = root.children
    assert [c.span.span_id[0] for c in first.children] == ["4"]
    assert [c.span.span_id[0] for c in second.children] == ["5", "6"]
    marked = {n.span.span_id[0] for n in _all(root) if n.slowest}
    assert marked == {"1", "3", "6"}  # 3 took 60 ms of 2's 10; then 6, the only timed one


def test_a_cycle_of_parents_is_still_shown_once() -> None:
    trees = span_tree([rec("1", "2", 0, 5), rec("2", "1", 1, 3)])
    assert sorted(n.span.span_id[0] for t in trees for n in _all(t)) == ["1", "2"]


def _all(node):
    yield node
    for child in node.children:
        yield from _all(child)


def test_traces_of_an_id_a_task_or_a_proposal() -> None:
    other = "f" * 32
    entries = [
        {"task": "t-1", "trace_id": TRACE},
        {"task": "t-1"},  # outside a trace
        {"proposal": "p-1", "trace_id": other},
        {"task": "t-1", "trace_id": other},
    ]
    assert traces_of(entries, "t-1") == [TRACE, other]
    assert traces_of(entries, "p-1") == [other]
    assert traces_of(entries, TRACE) == [TRACE]
    assert traces_of(entries, "t-2") == [] and traces_of(entries, "0" * 32) == []


def test_render_marks_the_slowest_path_and_indents_by_depth() -> None:
    trees = span_tree([rec("1", None, 0, 100, "s3-a"), rec("2", "1", 10, 30, "s4-a")])
    lines = render_trace(TRACE, trees).splitlines()
    assert lines[0] == f"trace {TRACE}: 2 spans, 2 agents, 100.000 ms"
    assert lines[2].startswith("*") and "s3-a" in lines[2] and " op1 " in lines[2]
    assert lines[3].startswith("*") and "10.000 ms" in lines[3] and "   op2 " in lines[3]
    assert lines[2].rstrip().endswith("ok")
