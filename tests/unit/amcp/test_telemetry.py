"""OpenTelemetry export of amcp spans: the same ids, parent and times as the audit log's,
messaging-convention names and attributes, and configuration by the OTEL_* variables.
No I/O: spans go to the SDK's in-memory exporter."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from amcp.errors import ConfigError
from amcp.telemetry import SpanExport, export_from_env, wanted
from amcp.tracing import SpanRecord, emit_span

hex_id = lambda n: st.integers(1, 16**n - 1).map(lambda i: f"{i:0{n}x}")  # noqa: E731


def exporting() -> tuple[SpanExport, InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    return SpanExport(SimpleSpanProcessor(memory)), memory


def a_span(**changes: object) -> SpanRecord:
    fields: dict[str, object] = {
        "trace_id": "0af7651916cd43dd8448eb211c80319c",
        "span_id": "b7ad6b7169203331",
        "parent_id": "00f067aa0ba902b7",
        "name": "tool.echo",
        "agent": "s1-a",
        "start_ns": 1_700_000_000_000_000_000,
        "end_ns": 1_700_000_000_002_500_000,
        "outcome": "ok",
        "attributes": {"tool": "echo", "caller": "cli-1", "family": "amcp.c.agents.call"},
    }
    fields.update(changes)
    return SpanRecord(**fields)  # type: ignore[arg-type]


def test_the_environment_asks_for_export_or_not() -> None:
    assert not wanted({})
    assert not wanted({"OTEL_TRACES_EXPORTER": "none"})
    assert not wanted({"OTEL_SERVICE_NAME": "x"})  # naming a service exports nothing
    assert wanted({"OTEL_TRACES_EXPORTER": "console"})
    assert wanted({"OTEL_TRACES_EXPORTER": "none, otlp"})
    assert wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert not wanted({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"})


def test_a_tool_span_keeps_its_ids_and_times_under_the_conventions() -> None:
    export, memory = exporting()
    record = a_span()
    export(record)
    (span,) = memory.get_finished_spans()
    assert f"{span.context.trace_id:032x}" == record.trace_id
    assert f"{span.context.span_id:016x}" == record.span_id
    assert span.parent is not None and f"{span.parent.span_id:016x}" == record.parent_id
    assert (span.start_time, span.end_time) == (record.start_ns, record.end_ns)
    assert span.name == "execute_tool echo" and span.kind is SpanKind.SERVER
    attrs = dict(span.attributes or {})
    assert attrs["messaging.system"] == "nats"
    assert attrs["messaging.destination.name"] == "amcp.c.agents.call"
    assert attrs["messaging.operation.name"] == "tool.echo"
    assert attrs["messaging.operation.type"] == "process"
    assert attrs["gen_ai.tool.name"] == "echo"
    assert (attrs["amcp.agent"], attrs["amcp.caller"], attrs["amcp.outcome"]) == (
        "s1-a",
        "cli-1",
        "ok",
    )
    assert span.status.status_code is StatusCode.UNSET


def test_other_spans_are_named_by_operation_and_family_and_errors_marked() -> None:
    export, memory = exporting()
    export(a_span(name="vote.ballot", attributes={"family": "amcp.c.vote.propose"}))
    export(a_span(name="task.s3", parent_id=None, outcome="failed", attributes={"n": {"a": 1}}))
    ballot, task = memory.get_finished_spans()
    assert ballot.name == "vote.ballot amcp.c.vote.propose" and ballot.kind is SpanKind.INTERNAL
    assert task.name == "task.s3" and task.parent is None
    assert task.status.status_code is StatusCode.ERROR and task.status.description == "failed"
    assert dict(task.attributes or {})["amcp.n"] == '{"a": 1}'  # not a valid value: JSON


@given(hex_id(32), hex_id(16), st.none() | hex_id(16), st.integers(0, 2**62), st.integers(0, 10**9))
def test_any_span_exports_with_the_same_ids(
    trace: str, span_id: str, parent: str | None, start: int, took: int
) -> None:
    export, memory = exporting()
    export(
        a_span(
            trace_id=trace, span_id=span_id, parent_id=parent, start_ns=start, end_ns=start + took
        )
    )
    (span,) = memory.get_finished_spans()
    got_parent = None if span.parent is None else f"{span.parent.span_id:016x}"
    assert (f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}", got_parent) == (
        trace,
        span_id,
        parent,
    )
    assert span.end_time - span.start_time == took


def test_an_installed_export_receives_every_emitted_span_until_shut_down() -> None:
    export, memory = exporting()
    export.install()
    try:
        emit_span(a_span())
        assert len(memory.get_finished_spans()) == 1
    finally:
        export.shutdown()
    emit_span(a_span(span_id="1111111111111111"))
    assert len(memory.get_finished_spans()) == 1


def test_the_variables_choose_the_exporter() -> None:
    assert export_from_env("amcp", {}) is None
    assert export_from_env("amcp", {"OTEL_TRACES_EXPORTER": "none"}) is None
    with pytest.raises(ConfigError, match="no span exporter 'nope'"):
        export_from_env("amcp", {"OTEL_TRACES_EXPORTER": "nope"})
    env = {"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "ops"}
    export = export_from_env("amcp", env, **{"service.instance.id": "s1-a"})
    assert export is not None
    try:
        assert export.resource.attributes["service.name"] == "ops"
        assert export.resource.attributes["service.instance.id"] == "s1-a"
    finally:
        export.shutdown()
    export = export_from_env("amcp-agent", {"OTEL_TRACES_EXPORTER": "otlp"})
    assert export is not None
    try:
        assert export.resource.attributes["service.name"] == "amcp-agent"
        assert type(export.processor.span_exporter).__module__.startswith(
            "opentelemetry.exporter.otlp.proto.http"
        )
    finally:
        export.shutdown()


def test_without_the_variables_nothing_of_opentelemetry_is_imported() -> None:
    code = (
        "import os, sys; from amcp.telemetry import export_from_env; from amcp.logs import "
        "setup_logging; setup_logging('info', True); export_from_env('amcp'); "
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    env = {"PATH": "/usr/bin:/bin", "OTEL_SERVICE_NAME": "x"}  # no exporter asked for
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
